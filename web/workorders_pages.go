package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/workorder"
)

type woColumn struct {
	Key, Label string
}

type woRow struct {
	ID      int64
	Cells   []string
	Owner   string
	Created string
}

type woOption struct {
	Value, Label string
	Selected     bool
}

type woListData struct {
	Columns          []woColumn
	Rows             []woRow
	Total            int
	Q, From, To      string
	Mine             bool
	Statuses, Types  []woOption
	Agents           []woOption
	ShowAgents       bool
	Error            string
	NextURL, PrevURL string
}

// labeler turns stored values into what a page shows: code labels, user names, local times.
type labeler struct {
	lang  string
	loc   *time.Location
	codes map[string]map[string]string // code table → code → label
	users map[int64]string
	teams map[int64]string
}

func (wo *workOrderPages) labeler(ctx context.Context, v *visit, o *dataobject.Object) (*labeler, error) {
	l := &labeler{lang: v.lang, loc: v.user.Tenant.Location(), codes: map[string]map[string]string{}, users: map[int64]string{},
		teams: map[int64]string{}}
	for _, f := range o.Visible() {
		if f.Type != dataobject.TypeCode || l.codes[f.CodeTable] != nil {
			continue
		}
		ct, err := wo.objects.CodeTable(ctx, v.user.Tenant, f.CodeTable)
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		for _, c := range ct.Codes {
			m[c.Code] = c.Label(v.lang)
		}
		l.codes[f.CodeTable] = m
	}
	us, err := wo.s.opts.Accounts.ListUsers(ctx, v.user.Tenant.ID)
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		l.users[u.ID] = u.Name()
		if u.TeamID != 0 {
			l.teams[u.TeamID] = u.TeamName
		}
	}
	return l, nil
}

func (l *labeler) show(f *dataobject.Field, v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		return x.In(l.loc).Format("2006-01-02 15:04")
	case int64:
		if f != nil && f.Key == workorder.FieldTeam {
			if name, ok := l.teams[x]; ok {
				return name
			}
		}
		return strconv.FormatInt(x, 10)
	case string:
		if f != nil && f.Type == dataobject.TypeCode {
			if lb, ok := l.codes[f.CodeTable][x]; ok {
				return lb
			}
		}
		return x
	case []string:
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}

func (l *labeler) user(id int64) string {
	if id == 0 {
		return ""
	}
	if n, ok := l.users[id]; ok {
		return n
	}
	return "#" + strconv.FormatInt(id, 10)
}

func codeOptions(l *labeler, table string, selected []string) []woOption {
	var out []woOption
	for code, label := range l.codes[table] {
		out = append(out, woOption{Value: code, Label: label, Selected: slices.Contains(selected, code)})
	}
	slices.SortFunc(out, func(a, b woOption) int { return compareStrings(a.Value, b.Value) })
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// list is the work-order list: an agent's own, a team lead's team's, everyone's for QA and
// admins, with search and filters.
func (wo *workOrderPages) list(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	o, err := wo.objects.DefaultObject(ctx, v.user.Tenant, dataobject.KindWorkOrder)
	if err != nil {
		return err
	}
	l, err := wo.labeler(ctx, v, o)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	d := woListData{Q: q.Get("q"), From: q.Get("from"), To: q.Get("to"), Mine: q.Get("mine") == "1",
		ShowAgents: account.ScopeOf(v.user.Roles) >= account.ScopeTeam}
	f, ferr := filterOf(r, l.loc)
	if st := o.Field(workorder.FieldStatus); st != nil {
		d.Statuses = codeOptions(l, st.CodeTable, f.Status)
	}
	if ty := o.Field(workorder.FieldType); ty != nil {
		d.Types = codeOptions(l, ty.CodeTable, f.Type)
	}
	if d.ShowAgents {
		us, err := wo.s.opts.Accounts.ListUsers(ctx, v.user.Tenant.ID)
		if err != nil {
			return err
		}
		for _, u := range us {
			if u.Has(account.RoleAgent) && (account.ScopeOf(v.user.Roles) == account.ScopeAll || u.TeamID == v.user.TeamID) {
				d.Agents = append(d.Agents, woOption{Value: strconv.FormatInt(u.ID, 10), Label: u.Name(), Selected: u.ID == f.AgentID})
			}
		}
	}
	var page *workorder.Page
	if ferr == nil {
		page, ferr = wo.svc.List(ctx, v.user.Tenant, v.user, f)
	}
	status, err := listRows(&d, o, l, page, ferr)
	if err != nil {
		return err
	}
	if ferr == nil {
		limit := f.Limit
		if limit == 0 {
			limit = workorder.DefaultPageSize
		}
		if f.Offset+len(page.Items) < page.Total {
			d.NextURL = withOffset(r.URL.Query(), f.Offset+limit)
		}
		if f.Offset > 0 {
			d.PrevURL = withOffset(r.URL.Query(), max(0, f.Offset-limit))
		}
	}
	wo.s.render(w, r, v, status, "workorders_list", "workorders.title", d)
	return nil
}

// listRows fills d's columns and rows from a page of work orders, or its error, and returns
// the page's status: the work-order list and the QA queue show work orders alike.
func listRows(d *woListData, o *dataobject.Object, l *labeler, page *workorder.Page, ferr error) (int, error) {
	var cols []*dataobject.Field
	for _, fd := range o.Visible() {
		if fd.InList {
			cols = append(cols, fd)
			d.Columns = append(d.Columns, woColumn{Key: fd.Key, Label: fd.Label(l.lang)})
		}
	}
	if ferr != nil {
		if fault.CodeOf(ferr) == fault.Internal {
			return 0, ferr
		}
		d.Error = fault.MessageOf(ferr)
		return fault.HTTPStatus(fault.CodeOf(ferr)), nil
	}
	d.Total = page.Total
	for _, it := range page.Items {
		row := woRow{ID: it.ID, Owner: l.user(it.OwnerID), Created: l.show(nil, it.CreatedAt)}
		for _, fd := range cols {
			row.Cells = append(row.Cells, l.show(fd, it.Values[fd.Key]))
		}
		d.Rows = append(d.Rows, row)
	}
	return http.StatusOK, nil
}

func withOffset(q url.Values, off int) string {
	q.Set("offset", strconv.Itoa(off))
	return "/workorders?" + q.Encode()
}

type woField struct {
	Key, Label, Type, Value, Shown string
	Required, Linked               bool
	MaxLength                      int
	Options                        []woOption
}

type woShowData struct {
	ID             int64
	Version        string
	Fields         []woField
	Columns        int
	Owner, Created string
	History        []woHistory
	Log            []workorder.LogEntry
	CanAssign      bool
	Agents         []woOption
	Error, Notice  string
	Dial           string
}

type woHistory struct {
	At, Actor, Action string
	Changes           []woChange
}

type woChange struct {
	Field, Old, New string
}

// show is a work order's page: its fields as an edit form, its history and operation log,
// and assignment for team leads and up.
func (wo *workOrderPages) show(w http.ResponseWriter, r *http.Request, v *visit) error {
	return wo.renderShow(w, r, v, http.StatusOK, "", r.URL.Query().Get("saved"))
}

func (wo *workOrderPages) renderShow(w http.ResponseWriter, r *http.Request, v *visit, status int, errMsg, notice string) error {
	ctx := r.Context()
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	o, err := wo.objects.DefaultObject(ctx, v.user.Tenant, dataobject.KindWorkOrder)
	if err != nil {
		return err
	}
	it, err := wo.svc.Get(ctx, v.user.Tenant, v.user, o.Key, id)
	if err != nil {
		return err
	}
	l, err := wo.labeler(ctx, v, o)
	if err != nil {
		return err
	}
	d := woShowData{ID: id, Version: it.UpdatedAt.Format(time.RFC3339Nano), Columns: o.EditColumns, Owner: l.user(it.OwnerID),
		Created: l.show(nil, it.CreatedAt), Error: errMsg, Notice: notice,
		CanAssign: account.ScopeOf(v.user.Roles) >= account.ScopeTeam}
	if s, ok := it.Values[workorder.FieldCaller].(string); ok {
		d.Dial = s
	}
	for _, f := range o.Visible() {
		fv := woField{Key: f.Key, Label: f.Label(v.lang), Type: string(f.Type), Required: f.Required, MaxLength: f.MaxLength,
			Linked: slices.Contains(linkedFields, f.Key), Shown: l.show(f, it.Values[f.Key])}
		switch x := it.Values[f.Key].(type) {
		case time.Time:
			fv.Value = x.In(l.loc).Format("2006-01-02T15:04")
		case nil:
		default:
			fv.Value = fmt.Sprint(x)
		}
		if f.Type == dataobject.TypeCode {
			fv.Options = codeOptions(l, f.CodeTable, []string{fv.Value})
		}
		d.Fields = append(d.Fields, fv)
	}
	hist, err := wo.svc.History(ctx, v.user.Tenant, v.user, o.Key, id)
	if err != nil {
		return err
	}
	for _, h := range hist {
		e := woHistory{At: l.show(nil, h.At), Actor: h.Actor, Action: h.Action}
		for _, c := range h.Changes {
			f := o.Field(c.Field)
			label := c.Field
			if f != nil {
				label = f.Label(v.lang)
			}
			e.Changes = append(e.Changes, woChange{Field: label, Old: l.show(f, c.Old), New: l.show(f, c.New)})
		}
		d.History = append(d.History, e)
	}
	if d.Log, err = wo.svc.OperationLog(ctx, v.user.Tenant, v.user, o.Key, id); err != nil {
		return err
	}
	if d.CanAssign {
		us, err := wo.s.opts.Accounts.ListUsers(ctx, v.user.Tenant.ID)
		if err != nil {
			return err
		}
		for _, u := range us {
			if u.Has(account.RoleAgent) && (account.ScopeOf(v.user.Roles) == account.ScopeAll || u.TeamID == v.user.TeamID) {
				d.Agents = append(d.Agents, woOption{Value: strconv.FormatInt(u.ID, 10), Label: u.Name(), Selected: u.ID == it.OwnerID})
			}
		}
	}
	wo.s.render(w, r, v, status, "workorders_show", "workorders.one", d)
	return nil
}

// editForm saves the edit form; a stale version re-renders the page with the conflict.
func (wo *workOrderPages) editForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	post, err := postedForm(w, r, func(status int, msg string) error { return wo.renderShow(w, r, v, status, msg, "") },
		fault.Invalid, fault.Conflict)
	if err != nil {
		return err
	}
	version, err := time.Parse(time.RFC3339Nano, r.PostForm.Get("version"))
	if err != nil {
		return fault.Errorf(fault.Invalid, "the form has no valid version: reload the page")
	}
	o, err := wo.objects.DefaultObject(ctx, v.user.Tenant, dataobject.KindWorkOrder)
	if err != nil {
		return err
	}
	vals := map[string]any{}
	for _, f := range o.Visible() {
		if slices.Contains(linkedFields, f.Key) {
			continue
		}
		if _, ok := r.PostForm[f.Key]; ok {
			vals[f.Key] = r.PostForm.Get(f.Key)
		}
	}
	if _, err := wo.svc.Update(ctx, v.user.Tenant, v.user, o.Key, id, vals, version); err != nil {
		return post.fail(err)
	}
	return post.redirect(fmt.Sprintf("/workorders/%d?saved=1", id))
}

func (wo *workOrderPages) assignForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	post, err := postedForm(w, r, func(status int, msg string) error { return wo.renderShow(w, r, v, status, msg, "") },
		fault.Invalid, fault.Conflict, fault.Forbidden)
	if err != nil {
		return err
	}
	version, err := time.Parse(time.RFC3339Nano, r.PostForm.Get("version"))
	if err != nil {
		return fault.Errorf(fault.Invalid, "the form has no valid version: reload the page")
	}
	agent, err := strconv.ParseInt(r.PostForm.Get("agent_id"), 10, 64)
	if err != nil {
		return fault.Errorf(fault.Invalid, "pick an agent")
	}
	if _, err := wo.svc.Assign(r.Context(), v.user.Tenant, v.user, "", id, workorder.Assignment{AgentID: agent}, version); err != nil {
		return post.fail(err)
	}
	return post.redirect(fmt.Sprintf("/workorders/%d?saved=1", id))
}
