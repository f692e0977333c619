package web

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/fault"
)

// The telephony admin pages: a config admin's ACD queues (settings, member agents, caller
// and customer-level priorities), numbers (DIDs) and trunks (deleting them and the SIP
// domain: cti_delete.go). Every change goes through the same cti.Service
// calls as the JSON API, so running calls see it at once; a refused change shows the cti
// package's message in the form and changes nothing.

func (s *Server) mountCTIAdmin(h *ctiHandlers) {
	s.mux.HandleFunc("GET /admin/cti/queues", s.page(account.PermConfigure, h.queuesPage))
	s.mux.HandleFunc("POST /admin/cti/queues", s.page(account.PermConfigure, h.createQueueForm))
	s.mux.HandleFunc("GET /admin/cti/queues/{name}", s.page(account.PermConfigure, h.queuePage))
	s.mux.HandleFunc("POST /admin/cti/queues/{name}", s.page(account.PermConfigure, h.saveQueueForm))
	s.mux.HandleFunc("POST /admin/cti/queues/{name}/members", s.page(account.PermConfigure, h.setMemberForm))
	s.mux.HandleFunc("POST /admin/cti/queues/{name}/members/{id}/remove", s.page(account.PermConfigure, h.removeMemberForm))
	s.mux.HandleFunc("GET /admin/cti/numbers", s.page(account.PermConfigure, h.numbersPage))
	s.mux.HandleFunc("POST /admin/cti/numbers", s.page(account.PermConfigure, h.saveNumberForm))
	s.mux.HandleFunc("GET /admin/cti/trunks", s.page(account.PermConfigure, h.trunksPage))
	s.mux.HandleFunc("POST /admin/cti/trunks", s.page(account.PermConfigure, h.saveTrunkForm))
	s.mux.HandleFunc("POST /admin/users/sip", s.page(account.PermManageUsers, h.sipPhoneForm))
}

// queueForm is a queue's settings as the form shows them: seconds, and caller priorities as
// lines of "number-or-prefix* priority".
type queueForm struct {
	Name          string
	Strategy      string
	RingTimeoutS  int
	MaxWaitS      int
	Overflow      string
	WrapUpS       int
	ServiceLevelS int
	MissedLimit   int
	Priorities    string
	Levels        string // level priorities: lines of "level-code priority"
}

func toQueueForm(q cti.Queue) queueForm {
	f := queueForm{Name: q.Name, Strategy: string(q.Strategy), RingTimeoutS: int(q.RingTimeout / time.Second),
		MaxWaitS: int(q.MaxWait / time.Second), Overflow: q.Overflow, WrapUpS: int(q.WrapUp / time.Second),
		ServiceLevelS: int(q.ServiceLevel / time.Second), MissedLimit: q.MissedLimit}
	var lines []string
	for _, p := range q.CallerPriorities {
		lines = append(lines, p.Caller+" "+strconv.Itoa(p.Priority))
	}
	f.Priorities = strings.Join(lines, "\n")
	lines = nil
	for _, p := range q.LevelPriorities {
		lines = append(lines, p.Level+" "+strconv.Itoa(p.Priority))
	}
	f.Levels = strings.Join(lines, "\n")
	return f
}

// readQueueForm reads the settings of queue name from the form; f is filled as far as it
// could be read, to show again with the error.
func readQueueForm(r *http.Request, name string) (cti.Queue, queueForm, error) {
	f := queueForm{Name: name, Strategy: r.PostFormValue("strategy"), Overflow: strings.TrimSpace(r.PostFormValue("overflow")),
		Priorities: r.PostFormValue("priorities"), Levels: r.PostFormValue("level_priorities")}
	for _, n := range []struct {
		field, what string
		dst         *int
	}{{"ring_timeout_s", "ring timeout", &f.RingTimeoutS}, {"max_wait_s", "maximum wait", &f.MaxWaitS},
		{"wrapup_s", "wrap-up", &f.WrapUpS}, {"service_level_s", "service-level threshold", &f.ServiceLevelS},
		{"missed_limit", "missed-call limit", &f.MissedLimit}} {
		v, err := formInt(r, n.field, n.what)
		if err != nil {
			return cti.Queue{}, f, err
		}
		if v < 0 {
			return cti.Queue{}, f, fault.Errorf(fault.Invalid, "%s is %d: it cannot be negative", n.what, v)
		}
		*n.dst = v
	}
	q := cti.Queue{Name: name, Strategy: cti.Strategy(f.Strategy), RingTimeout: time.Duration(f.RingTimeoutS) * time.Second,
		MaxWait: time.Duration(f.MaxWaitS) * time.Second, Overflow: f.Overflow, WrapUp: time.Duration(f.WrapUpS) * time.Second,
		ServiceLevel: time.Duration(f.ServiceLevelS) * time.Second, MissedLimit: f.MissedLimit}
	for i, line := range strings.Split(f.Priorities, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return cti.Queue{}, f, fault.Errorf(fault.Invalid, "priority callers, line %d: want a number (or prefix ending in *) and a priority 1–9", i+1)
		}
		p, err := strconv.Atoi(fields[1])
		if err != nil {
			return cti.Queue{}, f, fault.Errorf(fault.Invalid, "priority callers, line %d: priority %q is not a whole number", i+1, fields[1])
		}
		q.CallerPriorities = append(q.CallerPriorities, cti.CallerPriority{Caller: fields[0], Priority: p})
	}
	for i, line := range strings.Split(f.Levels, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return cti.Queue{}, f, fault.Errorf(fault.Invalid, "priority customer levels, line %d: want a customer level code and a priority 1–9", i+1)
		}
		p, err := strconv.Atoi(fields[1])
		if err != nil {
			return cti.Queue{}, f, fault.Errorf(fault.Invalid, "priority customer levels, line %d: priority %q is not a whole number", i+1, fields[1])
		}
		q.LevelPriorities = append(q.LevelPriorities, cti.LevelPriority{Level: fields[0], Priority: p})
	}
	return q, f, nil
}

type queuesAdminData struct {
	Deleted    string
	Queues     []cti.Queue
	New        queueForm
	Strategies []cti.Strategy
	Error      string
}

var strategies = []cti.Strategy{cti.LongestIdle, cti.RoundRobin, cti.RingAll}

func (h *ctiHandlers) queuesPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return h.renderQueues(w, r, v, http.StatusOK, queuesAdminData{New: queueForm{Strategy: string(cti.LongestIdle),
		RingTimeoutS: 15, MaxWaitS: 300, ServiceLevelS: 20}, Deleted: r.URL.Query().Get("deleted")})
}

func (h *ctiHandlers) renderQueues(w http.ResponseWriter, r *http.Request, v *visit, status int, d queuesAdminData) error {
	t, err := tenantOf(v, "queues")
	if err != nil {
		return err
	}
	if d.Queues, err = h.svc.Queues(r.Context(), t.Code); err != nil {
		return err
	}
	d.Strategies = strategies
	h.s.render(w, r, v, status, "cti_queues", "ctiadmin.queues", d)
	return nil
}

func (h *ctiHandlers) createQueueForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queues")
	if err != nil {
		return err
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	q, f, err := readQueueForm(r, name)
	if err == nil {
		if _, lerr := h.svc.Queue(r.Context(), t.Code, name); lerr == nil {
			err = fault.Errorf(fault.Conflict, "queue %q already exists", name)
		} else if fault.CodeOf(lerr) != fault.NotFound {
			return lerr
		}
	}
	if err == nil {
		err = h.svc.SaveQueue(r.Context(), t.Code, q)
	}
	if err != nil {
		return formRefused(err, func(status int, msg string) error {
			return h.renderQueues(w, r, v, status, queuesAdminData{New: f, Error: msg})
		})
	}
	http.Redirect(w, r, "/admin/cti/queues/"+url.PathEscape(name)+"?saved=1", http.StatusSeeOther)
	return nil
}

type memberRow struct {
	cti.QueueMember
	Name string
}

type queueAdminData struct {
	Form       queueForm
	Strategies []cti.Strategy
	Members    []memberRow
	Agents     []*account.User // the tenant's users with an extension, for the member picker
	Saved      bool
	Error      string // of the settings form
	MemberErr  string // of the member forms
}

func (h *ctiHandlers) queuePage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return h.renderQueue(w, r, v, http.StatusOK, queueAdminData{Saved: r.URL.Query().Get("saved") != ""}, true)
}

// renderQueue shows queue {name}; fresh fills the settings form from the stored queue.
func (h *ctiHandlers) renderQueue(w http.ResponseWriter, r *http.Request, v *visit, status int, d queueAdminData, fresh bool) error {
	t, err := tenantOf(v, "queues")
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	q, err := h.svc.Queue(r.Context(), t.Code, name)
	if err != nil {
		return err
	}
	if fresh {
		d.Form = toQueueForm(*q)
	}
	members, err := h.svc.QueueMembers(r.Context(), t.Code, name)
	if err != nil {
		return err
	}
	users, err := h.accounts.ListUsers(r.Context(), t.ID)
	if err != nil {
		return err
	}
	names := map[int64]string{}
	for _, u := range users {
		names[u.ID] = u.Username
		if u.Extension != "" && !u.Disabled {
			d.Agents = append(d.Agents, u)
		}
	}
	for _, m := range members {
		d.Members = append(d.Members, memberRow{QueueMember: m, Name: names[m.AgentID]})
	}
	d.Strategies = strategies
	h.s.render(w, r, v, status, "cti_queue", "ctiadmin.queue", d)
	return nil
}

func (h *ctiHandlers) saveQueueForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queues")
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if _, err := h.svc.Queue(r.Context(), t.Code, name); err != nil {
		return err
	}
	q, f, err := readQueueForm(r, name)
	if err == nil {
		err = h.svc.SaveQueue(r.Context(), t.Code, q)
	}
	if err != nil {
		return formRefused(err, func(status int, msg string) error {
			return h.renderQueue(w, r, v, status, queueAdminData{Form: f, Error: msg}, false)
		})
	}
	http.Redirect(w, r, "/admin/cti/queues/"+url.PathEscape(name)+"?saved=1", http.StatusSeeOther)
	return nil
}

func (h *ctiHandlers) setMemberForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queues")
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if _, err := h.svc.Queue(r.Context(), t.Code, name); err != nil {
		return err
	}
	agent, err := formInt(r, "agent_id", "agent")
	if err == nil && agent <= 0 {
		err = fault.Errorf(fault.Invalid, "choose an agent")
	}
	var level int
	if err == nil {
		level, err = formInt(r, "level", "level")
	}
	if err == nil { // cti refuses another tenant's user too; here it is named as not existing
		u, uerr := h.accounts.UserByID(r.Context(), int64(agent))
		if uerr != nil || u.Tenant == nil || u.Tenant.ID != t.ID {
			if uerr != nil && fault.CodeOf(uerr) != fault.NotFound {
				return uerr
			}
			err = fault.Errorf(fault.NotFound, "user %d does not exist", agent)
		}
	}
	if err == nil {
		err = h.svc.SetQueueMember(r.Context(), t.Code, name, int64(agent), level)
	}
	if err != nil {
		return formRefused(err, func(status int, msg string) error {
			return h.renderQueue(w, r, v, status, queueAdminData{MemberErr: msg}, true)
		})
	}
	http.Redirect(w, r, "/admin/cti/queues/"+url.PathEscape(name)+"?saved=1", http.StatusSeeOther)
	return nil
}

func (h *ctiHandlers) removeMemberForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queues")
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	if err := h.svc.RemoveQueueMember(r.Context(), t.Code, name, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/cti/queues/"+url.PathEscape(name)+"?saved=1", http.StatusSeeOther)
	return nil
}

type numbersAdminData struct {
	Deleted string
	Numbers []cti.DID
	Queues  []cti.Queue
	New     cti.DID
	Saved   string
	Error   string
}

func (h *ctiHandlers) numbersPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return h.renderNumbers(w, r, v, http.StatusOK, numbersAdminData{Saved: r.URL.Query().Get("saved"), Deleted: r.URL.Query().Get("deleted")})
}

func (h *ctiHandlers) renderNumbers(w http.ResponseWriter, r *http.Request, v *visit, status int, d numbersAdminData) error {
	t, err := tenantOf(v, "numbers")
	if err != nil {
		return err
	}
	if d.Numbers, err = h.svc.DIDs(r.Context(), t.Code); err != nil {
		return err
	}
	if d.Queues, err = h.svc.Queues(r.Context(), t.Code); err != nil {
		return err
	}
	h.s.render(w, r, v, status, "cti_numbers", "ctiadmin.numbers", d)
	return nil
}

func (h *ctiHandlers) saveNumberForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "numbers")
	if err != nil {
		return err
	}
	d := cti.DID{Number: strings.TrimSpace(r.PostFormValue("number")), Queue: r.PostFormValue("queue"),
		Extension: strings.TrimSpace(r.PostFormValue("extension"))}
	d.Priority, err = formInt(r, "priority", "priority")
	if err == nil && d.Queue != "" {
		// Named here rather than by the database's foreign key, and before anything changes.
		if _, qerr := h.svc.Queue(r.Context(), t.Code, d.Queue); qerr != nil {
			if fault.CodeOf(qerr) != fault.NotFound {
				return qerr
			}
			err = fault.Errorf(fault.Invalid, "number %s: queue %q does not exist", d.Number, d.Queue)
		}
	}
	if err == nil {
		err = h.svc.SaveDID(r.Context(), t.Code, d)
	}
	if err != nil {
		return formRefused(err, func(status int, msg string) error {
			return h.renderNumbers(w, r, v, status, numbersAdminData{New: d, Error: msg})
		})
	}
	http.Redirect(w, r, "/admin/cti/numbers?saved="+url.QueryEscape(d.Number), http.StatusSeeOther)
	return nil
}

// trunkForm is a trunk as its form shows it: never with the password.
type trunkForm struct {
	Name, Source, OutboundURI, CallerID, Username string
}

type trunksAdminData struct {
	Deleted  string
	Trunks   []cti.TrunkInfo
	Outbound string // the trunk agents' outbound calls take
	New      trunkForm
	Saved    string
	Error    string
}

func (h *ctiHandlers) trunksPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return h.renderTrunks(w, r, v, http.StatusOK, trunksAdminData{Saved: r.URL.Query().Get("saved"), Deleted: r.URL.Query().Get("deleted")})
}

func (h *ctiHandlers) renderTrunks(w http.ResponseWriter, r *http.Request, v *visit, status int, d trunksAdminData) error {
	t, err := tenantOf(v, "trunks")
	if err != nil {
		return err
	}
	if d.Trunks, err = h.svc.Trunks(r.Context(), t.Code); err != nil {
		return err
	}
	for _, k := range d.Trunks { // by name: the first with an outbound URI, as cti routes
		if k.OutboundURI != "" {
			d.Outbound = k.Name
			break
		}
	}
	h.s.render(w, r, v, status, "cti_trunks", "ctiadmin.trunks", d)
	return nil
}

// parseSource reads a trunk's source: an address (one host) or a network.
func parseSource(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fault.Errorf(fault.Invalid, "source %q is not an IP address or network (192.0.2.10 or 192.0.2.0/24)", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (h *ctiHandlers) saveTrunkForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "trunks")
	if err != nil {
		return err
	}
	f := trunkForm{Name: strings.TrimSpace(r.PostFormValue("name")), Source: strings.TrimSpace(r.PostFormValue("source")),
		OutboundURI: strings.TrimSpace(r.PostFormValue("outbound_uri")), CallerID: strings.TrimSpace(r.PostFormValue("caller_id")),
		Username: strings.TrimSpace(r.PostFormValue("username"))}
	src, err := parseSource(f.Source)
	if err == nil {
		err = h.svc.SaveTrunk(r.Context(), cti.Trunk{Tenant: t.Code, Name: f.Name, Source: src, OutboundURI: f.OutboundURI,
			CallerID: f.CallerID, Username: f.Username, Password: r.PostFormValue("password")})
	}
	if err != nil {
		return formRefused(err, func(status int, msg string) error {
			return h.renderTrunks(w, r, v, status, trunksAdminData{New: f, Error: msg})
		})
	}
	http.Redirect(w, r, "/admin/cti/trunks?saved="+url.QueryEscape(f.Name), http.StatusSeeOther)
	return nil
}

// sipPhoneForm sets a user's extension and, when given, a new SIP password (kept as digest
// HA1s by cti.SetSIPPassword, as `ctid user add --sip-password-file` does). A changed
// extension without a password leaves the user without one.
func (h *ctiHandlers) sipPhoneForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "users")
	if err != nil {
		return err
	}
	fail := func(err error) error {
		return formRefused(err, func(status int, msg string) error {
			return h.s.showUsers(w, r, v, usersData{SIPError: msg}, status)
		})
	}
	id, err := formInt(r, "user_id", "user")
	if err != nil {
		return fail(err)
	}
	u, err := h.accounts.UserByID(r.Context(), int64(id))
	if err != nil || u.Tenant == nil || u.Tenant.ID != t.ID {
		return fail(fault.Errorf(fault.NotFound, "user %d does not exist", id))
	}
	password := r.PostFormValue("sip_password")
	if password != "" {
		if err := cti.CheckSIPPassword(password); err != nil {
			return fail(err)
		}
	}
	ext := strings.TrimSpace(r.PostFormValue("extension"))
	if ext == "" { // left empty: the user keeps their extension
		ext = u.Extension
	}
	if password != "" && ext == "" {
		return fail(fault.Errorf(fault.Invalid, "user %s: a SIP password needs an extension", u.Username))
	}
	if password != "" {
		domain, err := h.svc.SIPDomain(r.Context(), t.Code)
		if err != nil {
			return err
		}
		if domain == "" {
			return fail(fault.Errorf(fault.Invalid, "tenant %s has no SIP domain (the digest realm): an operator sets it first", t.Code))
		}
	}
	if err := h.accounts.SetExtension(r.Context(), t.ID, u.ID, ext, actorOf(v)); err != nil {
		return fail(err)
	}
	if password != "" {
		if err := h.svc.SetSIPPassword(r.Context(), u.ID, password); err != nil {
			return fail(err)
		}
	}
	http.Redirect(w, r, "/admin/users?sip="+url.QueryEscape(u.Username), http.StatusSeeOther)
	return nil
}
