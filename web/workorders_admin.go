package web

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/workorder"
)

type woAdminForm struct {
	Key, Name string
	Version   int
	JSON      string
}

type woAdminData struct {
	AutoReady bool
	DraftMap  string // one "customer_field=work_order_field" a line
	Forms     []woAdminForm
	NewKey    string
	NewJSON   string
	Error     string
	Saved     bool
}

// adminPage is where a config admin sets the work-order options (auto ready after a save,
// the draft mapping of customer fields) and defines QA forms as JSON.
func (wo *workOrderPages) adminPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return wo.renderAdmin(w, r, v, http.StatusOK, woAdminData{Saved: r.URL.Query().Get("saved") == "1"})
}

func (wo *workOrderPages) renderAdmin(w http.ResponseWriter, r *http.Request, v *visit, status int, d woAdminData) error {
	ctx := r.Context()
	st, err := wo.svc.Settings(ctx, v.user.Tenant)
	if err != nil {
		return err
	}
	if d.Error == "" || d.DraftMap == "" {
		d.AutoReady = st.AutoReady
		var lines []string
		for from, to := range st.DraftMap {
			lines = append(lines, from+"="+to)
		}
		sort.Strings(lines)
		d.DraftMap = strings.Join(lines, "\n")
	}
	forms, err := wo.svc.Forms(ctx, v.user.Tenant)
	if err != nil {
		return err
	}
	for _, f := range forms {
		raw, err := json.MarshalIndent(f.FormDef, "", "  ")
		if err != nil {
			return err
		}
		d.Forms = append(d.Forms, woAdminForm{Key: f.Key, Name: f.Name, Version: f.Version, JSON: string(raw)})
	}
	wo.s.render(w, r, v, status, "workorders_admin", "workorders.admin", d)
	return nil
}

func (wo *workOrderPages) settingsForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	var d woAdminData
	post, err := postedForm(w, r, func(_ int, msg string) error {
		d.Error = msg
		return wo.renderAdmin(w, r, v, http.StatusBadRequest, d)
	}, fault.Invalid)
	if err != nil {
		return err
	}
	st := workorder.Settings{AutoReady: r.PostForm.Get("auto_ready") == "1", DraftMap: map[string]string{}}
	d = woAdminData{AutoReady: st.AutoReady, DraftMap: r.PostForm.Get("draft_map")}
	for _, line := range strings.Split(d.DraftMap, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		from, to, ok := strings.Cut(line, "=")
		if !ok {
			return post.fail(fault.Errorf(fault.Invalid, "draft mapping line %q: want customer_field=work_order_field", line))
		}
		st.DraftMap[strings.TrimSpace(from)] = strings.TrimSpace(to)
	}
	if err := wo.svc.PutSettings(r.Context(), v.user.Tenant, st, actorOf(v)); err != nil {
		return post.fail(err)
	}
	return post.redirect("/admin/workorders?saved=1")
}

func (wo *workOrderPages) qaFormForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	var key, raw string
	post, err := postedForm(w, r, func(_ int, msg string) error {
		return wo.renderAdmin(w, r, v, http.StatusBadRequest, woAdminData{Error: msg, NewKey: key, NewJSON: raw})
	}, fault.Invalid, fault.Forbidden)
	if err != nil {
		return err
	}
	key, raw = strings.TrimSpace(r.PostForm.Get("key")), r.PostForm.Get("definition")
	var def workorder.FormDef
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&def); err != nil {
		return post.fail(fault.Errorf(fault.Invalid, "QA form %q is not valid JSON for a form: %v", key, err))
	}
	if _, err := wo.svc.PutForm(r.Context(), v.user.Tenant, v.user, key, def); err != nil {
		return post.fail(err)
	}
	return post.redirect("/admin/workorders?saved=1")
}
