package cti

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir; the pool trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ctid test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// A phone over TLS (verifying ctid's certificate) registers with digest and places an
// outbound call through the tenant's trunk (ACK and BYE follow the Record-Route over TLS);
// then a trunk's call to a queue rings it and the trunk hangs up.
func TestTLSPhoneRegistersAndCalls(t *testing.T) {
	pool := sipTenantFixture(t)
	ctx := ctxT(t)
	u := mustAgent(t, pool, "acme", "alice", "1001", "alice-pass")
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	s := startService(t, pool, Config{UDPAddr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile})
	if s.Addr("tls") == "" {
		t.Fatal("no TLS listener")
	}
	trunk := newParty(t, "trunk")
	if err := s.SaveTrunk(ctx, Trunk{Tenant: "acme", Name: "carrier", Source: netip.MustParsePrefix("127.0.0.1/32"),
		OutboundURI: "sip:" + trunk.addr}); err != nil {
		t.Fatal(err)
	}
	sub := s.Events().Subscribe("acme", 100)
	defer sub.Close()

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("tls-phone"), sipgo.WithUserAgenTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(testLogger(t))),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(testLogger(t))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	tlsHost, tlsPort := s.hostPort("tls")
	ctid := sip.Uri{Host: tlsHost, Port: tlsPort, UriParams: sip.NewParams()}
	ctid.UriParams.Add("transport", "tls")

	reg := registerReq(t, s, "1001", "", "<sip:1001@127.0.0.1:5999;transport=tls>")
	reg.SetDestination(s.Addr("tls"))
	reg.SetTransport("TLS")
	if res := register(t, client, reg, "1001", "alice-pass"); res.StatusCode != 200 {
		t.Fatalf("REGISTER over TLS = %d", res.StatusCode)
	}
	if got := s.reg.contacts("acme", "1001"); len(got) != 1 {
		t.Fatalf("bindings after REGISTER over TLS: %d, want 1", len(got))
	}
	var source string
	if err := pool.QueryRow(ctx, `SELECT source FROM t_acme.sip_bindings WHERE extension = '1001'`).Scan(&source); err != nil || source[:4] != "tls:" {
		t.Fatalf("binding source = %q, %v; want tls:…", source, err)
	}

	contact := sip.ContactHeader{Address: sip.Uri{User: "1001", Host: "127.0.0.1", Port: 5999, UriParams: sip.NewParams()}}
	contact.Address.UriParams.Add("transport", "tls")
	dcc := sipgo.NewDialogClientCache(client, contact)
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: "013800138000", Host: testDomain})
	req.SetDestination(s.Addr("tls"))
	req.SetTransport("TLS")
	from := &sip.FromHeader{Address: sip.Uri{User: "1001", Host: testDomain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: "013800138000", Host: testDomain}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte("v=0\r\n"))
	sess, err := dcc.WriteInvite(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{Username: "1001", Password: "alice-pass"}); err != nil {
		t.Fatalf("outbound call over TLS: %v", err)
	}
	recv(t, trunk.invites, "INVITE at the trunk")
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatalf("BYE over TLS: %v", err)
	}
	recv(t, trunk.byes, "BYE at the trunk")
	ended := func(what string) *CDR {
		t.Helper()
		for {
			select {
			case ev := <-sub.C:
				if ev.Type == CallEnded {
					return ev.CDR
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("no call.ended for %s", what)
			}
		}
	}
	if c := ended("the outbound call"); c.Result != Answered || c.HangupBy != HangupAgent || c.AgentID != u.ID {
		t.Fatalf("CDR of the TLS phone's outbound call = %+v", c)
	}

	// An inbound call rings the phone over the connection it registered on (it listens on
	// no port), and the trunk's BYE reaches it the same way.
	if err := s.SaveQueue(ctx, "acme", Queue{Name: "sales"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveDID(ctx, "acme", DID{Number: testDID, Queue: "sales"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQueueMember(ctx, "acme", "sales", u.ID, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Agents().Set(ctx, "acme", u.ID, Change{To: Ready, Who: ByAgent}); err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	dsc := sipgo.NewDialogServerCache(client, contact)
	rang, byes := make(chan struct{}, 1), make(chan struct{}, 1)
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		d, err := dsc.ReadInvite(req, tx)
		if err != nil {
			tx.Respond(sip.NewResponseFromRequest(req, 400, err.Error(), nil))
			return
		}
		rang <- struct{}{}
		d.Respond(200, "OK", []byte("v=0\r\n"), sip.NewHeader("Content-Type", "application/sdp"))
		<-tx.Done()
	})
	acks := make(chan string, 4)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = dsc.ReadAck(req, tx)
		if len(req.Body()) > 0 { // only click-to-dial's ACK carries SDP
			acks <- string(req.Body())
		}
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := dsc.ReadBye(req, tx); err == nil {
			byes <- struct{}{}
		}
	})
	in := trunk.dial(ctx, s, testDID)
	if err := in.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("inbound call to the TLS phone: %v", err)
	}
	recv(t, rang, "INVITE at the TLS phone")
	if err := in.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.Bye(ctx); err != nil {
		t.Fatalf("trunk's BYE: %v", err)
	}
	recv(t, byes, "BYE at the TLS phone")
	if c := ended("the inbound call"); c.Result != Answered || c.HangupBy != HangupCaller || c.AgentID != u.ID {
		t.Fatalf("CDR of the inbound call to the TLS phone = %+v", c)
	}

	// Click-to-dial rings the phone over its connection too, and ACKs and BYEs it there.
	trunk.setAnswer(answerWith(farSDP))
	st, err := s.Originate(ctx, "acme", u.ID, "013800138000")
	if err != nil {
		t.Fatalf("click-to-dial with a TLS phone: %v", err)
	}
	recv(t, rang, "click-to-dial INVITE at the TLS phone")
	td := recv(t, trunk.invites, "click-to-dial INVITE at the trunk")
	if body := recv(t, acks, "click-to-dial ACK at the TLS phone"); body != farSDP {
		t.Fatalf("TLS phone's ACK body %q, want the trunk's SDP", body)
	}
	if err := td.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	recv(t, byes, "click-to-dial BYE at the TLS phone")
	if c := ended("the click-to-dial call"); c.CallID != st.CallID || c.Result != Answered || c.Direction != Outbound {
		t.Fatalf("CDR of the click-to-dial call from the TLS phone = %+v", c)
	}
}
