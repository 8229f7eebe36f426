package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/store"
)

// Secret is a stored secret as the API shows it: metadata only, never the value.
type Secret struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// UsedBy are the servers whose config references ${secret:NAME}, sorted.
	UsedBy []string `json:"used_by"`
}

// NewSecret is the API view of a stored secret's metadata with the servers that use it.
func NewSecret(m store.SecretMeta, usedBy []string) Secret {
	if usedBy == nil {
		usedBy = []string{}
	}
	return Secret{Name: m.Name, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, UsedBy: usedBy}
}

// Registry messages of the secrets service.
type (
	// getSecretUsers asks which servers reference each secret (map[string][]string).
	getSecretUsers struct{}
	// restartSecretUsers restarts, in one registry turn, every enabled server that
	// references Secret, so each picks up the new value (or, deleted, reports it missing),
	// except a ready server that reads it only at its next OAuth grant (the ID token of the
	// id_jag grant); the answer is a SecretRestart.
	restartSecretUsers struct{ Secret string }
)

// SecretRestart is the answer of restartSecretUsers.
type SecretRestart struct {
	// Restarted are the enabled servers that were restarted, sorted.
	Restarted []string
	// UsedBy are all servers that reference the secret, sorted.
	UsedBy []string
}

// restartSecretUsers answers restartSecretUsers.
func (r *registry) restartSecretUsers(ctx actor.Context, m restartSecretUsers) {
	out := SecretRestart{Restarted: []string{}, UsedBy: r.cfg.SecretUsers()[m.Secret]}
	for _, name := range out.UsedBy {
		rw, ok := r.rows[name]
		if !ok || !rw.cfg.IsEnabled() {
			continue // disabled servers read the secret when they are enabled
		}
		if rw.st.State == StateReady && rw.cfg.SecretAtGrantOnly(m.Secret) {
			// An ID token of the id_jag grant: the connection runs on its access token and
			// the next grant reads the new value; renewing it must not drop the sessions.
			continue
		}
		if rw.cfg.OAuth.SelfGrant() && r.oauth != nil {
			// A new credential (client secret, key, ID token) is worth a grant even when
			// the failed ones used up the budget; sent before the restart's own grant.
			ctx.Send(r.oauth, resetSelfGrants{Name: name})
		}
		r.restartNow(ctx, name, rw)
		out.Restarted = append(out.Restarted, name)
	}
	if len(out.Restarted) > 0 {
		r.log.Info("restarted servers after a secret change", "secret", m.Secret, "servers", out.Restarted)
	}
	ctx.Respond(reply{v: out})
}

// Secrets is the secrets service: values in the store (encrypted there), users and restarts
// through the registry. Its methods may be called from many goroutines; the store is safe for
// concurrent use and the registry serialises the restarts.
type Secrets struct {
	store  *store.Store
	client *Client
	log    *slog.Logger
}

// NewSecrets returns the secrets service over st (with its secrets key open) and the
// registry behind client. A nil logger discards.
func NewSecrets(st *store.Store, client *Client, logger *slog.Logger) *Secrets {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Secrets{store: st, client: client, log: logger}
}

// secretError turns a store error into an API error: NOT_FOUND for a missing secret; other
// failures stay internal (logged, shown as "internal error").
func secretError(name string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return Errorf(CodeNotFound, "secret %q not found", name)
	}
	return fmt.Errorf("secret %q: %w", name, err)
}

// users asks the registry who uses each secret.
func (s *Secrets) users(ctx context.Context) (map[string][]string, error) {
	return askValue[map[string][]string](s.client, ctx, getSecretUsers{})
}

// List returns every stored secret with its users.
func (s *Secrets) List(ctx context.Context) ([]Secret, error) {
	users, err := s.users(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.store.ListSecrets()
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	out := make([]Secret, 0, len(list))
	for _, m := range list {
		out = append(out, NewSecret(m, users[m.Name]))
	}
	return out, nil
}

// Get returns one secret's metadata; NOT_FOUND when it does not exist.
func (s *Secrets) Get(ctx context.Context, name string) (Secret, error) {
	users, err := s.users(ctx)
	if err != nil {
		return Secret{}, err
	}
	m, err := s.store.Secret(name)
	if err != nil {
		return Secret{}, secretError(name, err)
	}
	return NewSecret(m, users[name]), nil
}

// Set stores value and restarts the enabled servers that use the secret; created says it
// did not exist before.
func (s *Secrets) Set(ctx context.Context, name, value string) (sec Secret, created bool, restarted []string, err error) {
	_, err = s.store.Secret(name)
	created = errors.Is(err, store.ErrNotFound)
	m, err := s.store.SetSecret(name, value)
	if err != nil {
		return Secret{}, false, nil, secretError(name, err)
	}
	s.log.Info("secret stored", "secret", name, "created", created)
	res, err := askValue[SecretRestart](s.client, ctx, restartSecretUsers{Secret: name})
	if err != nil {
		return Secret{}, false, nil, err
	}
	return NewSecret(m, res.UsedBy), created, res.Restarted, nil
}

// Delete deletes the secret and restarts the enabled servers that used it (they go to
// error, naming the missing secret).
func (s *Secrets) Delete(ctx context.Context, name string) (restarted []string, err error) {
	if err := s.store.DeleteSecret(name); err != nil {
		return nil, secretError(name, err)
	}
	s.log.Info("secret deleted", "secret", name)
	res, err := askValue[SecretRestart](s.client, ctx, restartSecretUsers{Secret: name})
	if err != nil {
		return nil, err
	}
	return res.Restarted, nil
}
