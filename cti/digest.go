package cti

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"
)

// nonces are stateless: base64(issued-at ‖ HMAC(key, issued-at ‖ realm)). A nonce with a
// good MAC but older than the TTL is stale (the phone retries with stale=true without asking
// its user); a bad MAC is no nonce of ours. The key is per process: nonces do not survive a
// restart, phones simply get a new challenge.
//
// What is stateful is the nonce count: the highest nc accepted per nonce is remembered, so an
// Authorization header captured and sent again (same or lower nc) is refused.
type nonces struct {
	key []byte
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	// Two generations of nonce → highest nc accepted. Every ttl the current generation
	// becomes the previous one and the previous one is dropped, so an entry lives at least
	// ttl — by then its nonce is stale and no longer accepted anyway.
	cur, prev map[string]uint32
	rotated   time.Time
}

// maxNonceCounts bounds the remembered nonces of one generation: when full, it rotates early
// (memory stays bounded under a flood of authenticated requests; the cost is that nonces
// younger than the ttl may be replayed once after such a rotation).
const maxNonceCounts = 1 << 20

func newNonces(ttl time.Duration) *nonces {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("crypto/rand: " + err.Error()) // the kernel's randomness is gone: nothing is safe
	}
	return &nonces{key: key, ttl: ttl, now: time.Now, cur: map[string]uint32{}, prev: map[string]uint32{}, rotated: time.Now()}
}

// use records nc for nonce and reports whether it is new: higher than any count accepted for
// the nonce before. A response without qop has no count: its nonce serves once (nc 1).
// Call it only for a response whose digest checked out, so that nobody can burn the counts
// of a nonce they merely saw.
func (n *nonces) use(nonce string, nc int) bool {
	if nc <= 0 || nc > 0xffffffff {
		return false
	}
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if now.Sub(n.rotated) >= n.ttl || len(n.cur) >= maxNonceCounts {
		n.prev, n.cur, n.rotated = n.cur, make(map[string]uint32, len(n.cur)/2), now
	}
	last, ok := n.cur[nonce]
	if !ok {
		last = n.prev[nonce]
	}
	if uint32(nc) <= last {
		return false
	}
	n.cur[nonce] = uint32(nc)
	return true
}

func (n *nonces) mac(issued []byte, realm string) []byte {
	h := hmac.New(sha256.New, n.key)
	h.Write(issued)
	h.Write([]byte(realm))
	return h.Sum(nil)[:16]
}

func (n *nonces) issue(realm string) string {
	issued := binary.BigEndian.AppendUint64(nil, uint64(n.now().UnixNano()))
	return base64.RawURLEncoding.EncodeToString(append(issued, n.mac(issued, realm)...))
}

// check reports whether nonce is ours for realm, and whether it is stale.
func (n *nonces) check(nonce, realm string) (valid, stale bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 8+16 {
		return false, false
	}
	if !hmac.Equal(b[8:], n.mac(b[:8], realm)) {
		return false, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age := n.now().Sub(issued)
	return true, age > n.ttl || age < -time.Minute
}

// challenges are the WWW-Authenticate values for realm, one per algorithm in the configured
// order (default SHA-256 first, then MD5: RFC 8760 §2.4).
func (n *nonces) challenges(realm string, stale bool, algs []string) []string {
	nonce := n.issue(realm)
	var out []string
	for _, alg := range algs {
		c := digest.Challenge{Realm: realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

// verifyDigest checks cred's response against the stored HA1 of its algorithm.
func verifyDigest(cred *digest.Credentials, method string, u *sipUser) bool {
	var a1 string
	switch strings.ToUpper(cred.Algorithm) {
	case "", md5Alg:
		a1 = u.HA1MD5
	case sha256Alg:
		a1 = u.HA1SHA256
	default:
		return false
	}
	if a1 == "" {
		return false
	}
	chal := &digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, Opaque: cred.Opaque}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
	}
	want, err := digest.Digest(chal, digest.Options{Method: method, URI: cred.URI, Username: cred.Username,
		Cnonce: cred.Cnonce, Count: cred.Nc, A1: a1})
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want.Response), []byte(cred.Response)) == 1
}
