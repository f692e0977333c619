package cti

import (
	"context"
	"net/netip"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// trunkAuthenticated checks the digest of an INVITE from a trunk that has credentials: the
// source allow-list found the trunk, and its INVITE must also answer a 407 challenge in the
// realm its password was set for. Failed answers count per trunk and source address; at the
// limit (Config.AuthFailLimit) the source gets 403 for a while. It answers the INVITE itself
// and returns false unless the call may go on; a trunk without credentials always may.
func (s *Service) trunkAuthenticated(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, t *Trunk, src netip.Addr) bool {
	if t.auth == nil {
		return true
	}
	auth := t.auth
	return s.reg.checkDigest(ctx, req, tx, digestCheck{realm: auth.Realm, username: auth.Extension, proxy: true,
		failKey: "trunk/" + strconv.FormatInt(t.ID, 10) + "/" + src.String(),
		lookup:  func(context.Context) (*sipUser, error) { return auth, nil }})
}
