// Command docker is a TEST DOUBLE of the docker client, for mcpproxy's end-to-end tests of
// Docker isolation on machines without a Docker engine. It is never used outside tests.
//
// Put the directory holding this binary (built as "docker") first on the daemon's PATH. It
// understands the three commands mcpproxy runs:
//
//   - `docker version --format '{{json .}}'`: prints a client and a server version, or, when
//     the file $DOCKER_CONFIG/dockerdouble-no-engine exists, no server and the real client's
//     "Cannot connect" error with exit status 1;
//   - `docker rm -f NAME`: does nothing and succeeds (there are no containers);
//   - `docker run [options] IMAGE COMMAND [ARGS...]`: runs COMMAND locally in place of the
//     container (exec, so the process group and signals behave as with a real client),
//     with an environment like a container's: PATH plus the variables named by -e (a bare
//     -e KEY takes KEY's value from this process's environment, as docker does), nothing
//     else. Options it does not model are accepted and ignored.
//
// Every invocation is appended as one JSON line {"args": [...]} to
// $DOCKER_CONFIG/dockerdouble.log when DOCKER_CONFIG is set, so a test can check what
// mcpproxy asked for (DOCKER_CONFIG is a real docker client variable that mcpproxy passes to
// the client, which is how the log location reaches this double).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	args := os.Args[1:]
	logCall(args)
	if len(args) == 0 {
		fail(2, "usage: docker version|rm|run ...")
	}
	switch args[0] {
	case "version":
		version()
	case "rm":
		os.Exit(0)
	case "run":
		run(args[1:])
	default:
		fail(2, fmt.Sprintf("docker double: command %q is not modelled", args[0]))
	}
}

func logCall(args []string) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		return
	}
	line, _ := json.Marshal(map[string]any{"args": args})
	f, err := os.OpenFile(filepath.Join(dir, "dockerdouble.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(append(line, '\n'))
}

func fail(code int, msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(code)
}

func version() {
	if _, err := os.Stat(filepath.Join(os.Getenv("DOCKER_CONFIG"), "dockerdouble-no-engine")); err == nil && os.Getenv("DOCKER_CONFIG") != "" {
		fmt.Println(`{"Client":{"Version":"0.0.0-dockerdouble"},"Server":null}`)
		fail(1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
	}
	fmt.Println(`{"Client":{"Version":"0.0.0-dockerdouble"},"Server":{"Version":"0.0.0-dockerdouble"}}`)
}

// flagsWithValue are the docker run options that take a separate value.
var flagsWithValue = map[string]bool{
	"--name": true, "--label": true, "-l": true, "--network": true, "--net": true, "-e": true, "--env": true,
	"-w": true, "--workdir": true, "-v": true, "--volume": true, "-u": true, "--user": true,
	"--pull": true, "--platform": true, "--entrypoint": true, "--memory": true, "-m": true, "--cpus": true,
}

func run(args []string) {
	env := []string{"PATH=" + os.Getenv("PATH")}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			break
		}
		name, value, hasValue := strings.Cut(a, "=")
		if flagsWithValue[name] && !hasValue {
			i++
			if i >= len(args) {
				fail(125, "docker double: "+name+" needs a value")
			}
			value = args[i]
		}
		if name == "-e" || name == "--env" {
			if k, v, ok := strings.Cut(value, "="); ok {
				env = append(env, k+"="+v)
			} else if v, ok := os.LookupEnv(value); ok {
				env = append(env, value+"="+v)
			}
		}
	}
	if len(args)-i < 2 {
		fail(125, "docker double: want IMAGE COMMAND [ARGS...]")
	}
	command := args[i+1]
	path, err := exec.LookPath(command)
	if err != nil {
		fail(127, fmt.Sprintf("docker double: %v", err))
	}
	if err := syscall.Exec(path, args[i+1:], env); err != nil {
		fail(126, fmt.Sprintf("docker double: exec %s: %v", command, err))
	}
}
