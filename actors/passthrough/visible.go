package passthrough

import "strconv"

// This file is the agent token's part of the session's tool visibility predicate
// (toolRefusal in tools.go): Options.Visible, set from the token's scope (actors.Scope),
// says which of the server's tools the agent may see and call; nil shows everything and
// costs nothing.

// readOnlyOf is tool's readOnlyHint as this session's tools/list answers said, or the
// registry's list before this session listed it.
func (s *session) readOnlyOf(tool string) bool {
	if ro, ok := s.readOnly[tool]; ok {
		return ro
	}
	return s.o.Target.ReadOnly[tool]
}

// scopeRefusal says why the token's scope hides tool, "" when it does not.
func (s *session) scopeRefusal(tool string) string {
	if s.o.Visible == nil || s.o.Visible(tool, s.readOnlyOf(tool)) {
		return ""
	}
	return "the agent token does not allow tool " + strconv.Quote(tool) + " of server " + strconv.Quote(s.o.Server)
}
