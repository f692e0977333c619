package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ctid/ctid/dataobject"
)

// The code-table pages (编码): a config admin creates code tables and their codes (labels in
// English and Chinese, order, enabled, an optional parent for two-level lists). Codes are
// never deleted, since records keep them: an admin disables them instead.

type codeTablesData struct {
	Tables []*dataobject.CodeTable
	New    dataobject.CodeTable
	Error  string
}

func (o *objectPages) codeTablesPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return o.renderCodeTables(w, r, v, http.StatusOK, codeTablesData{})
}

func (o *objectPages) renderCodeTables(w http.ResponseWriter, r *http.Request, v *visit, status int, d codeTablesData) error {
	t, err := tenantOf(v, "code tables")
	if err != nil {
		return err
	}
	if d.Tables, err = o.store.CodeTables(r.Context(), t); err != nil {
		return err
	}
	o.s.render(w, r, v, status, "codetables_admin", "codes.title", d)
	return nil
}

func (o *objectPages) createCodeTableForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "code tables")
	if err != nil {
		return err
	}
	ct := dataobject.CodeTable{Key: strings.TrimSpace(r.PostFormValue("key")), NameEN: r.PostFormValue("name_en"), NameZH: r.PostFormValue("name_zh")}
	_, err = o.store.CreateCodeTable(r.Context(), t, ct.Key, ct.NameEN, ct.NameZH)
	if status, msg, ok := formProblem(err); ok {
		return o.renderCodeTables(w, r, v, status, codeTablesData{New: ct, Error: msg})
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/code-tables/"+url.PathEscape(ct.Key)+"?saved=1", http.StatusSeeOther)
	return nil
}

type codeTableData struct {
	Table *dataobject.CodeTable
	Top   []dataobject.Code // possible parents: the top-level codes, enabled or not
	New   dataobject.Code
	Error string
	Saved bool
}

func (o *objectPages) codeTablePage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return o.renderCodeTable(w, r, v, http.StatusOK, codeTableData{Saved: r.URL.Query().Get("saved") == "1", New: dataobject.Code{Enabled: true}})
}

func (o *objectPages) renderCodeTable(w http.ResponseWriter, r *http.Request, v *visit, status int, d codeTableData) error {
	t, err := tenantOf(v, "code tables")
	if err != nil {
		return err
	}
	if d.Table, err = o.store.CodeTable(r.Context(), t, r.PathValue("table")); err != nil {
		return err
	}
	for _, c := range d.Table.Codes {
		if c.Parent == "" {
			d.Top = append(d.Top, c)
		}
	}
	o.s.render(w, r, v, status, "codetable_admin", "codes.title", d)
	return nil
}

func (o *objectPages) renameCodeTableForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "code tables")
	if err != nil {
		return err
	}
	key := r.PathValue("table")
	err = o.store.RenameCodeTable(r.Context(), t, key, r.PostFormValue("name_en"), r.PostFormValue("name_zh"))
	if status, msg, ok := formProblem(err); ok {
		return o.renderCodeTable(w, r, v, status, codeTableData{Error: msg, New: dataobject.Code{Enabled: true}})
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/code-tables/"+url.PathEscape(key)+"?saved=1", http.StatusSeeOther)
	return nil
}

// putCodeForm adds a code or changes one: the add form and each code's row post here.
func (o *objectPages) putCodeForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "code tables")
	if err != nil {
		return err
	}
	key := r.PathValue("table")
	c := dataobject.Code{Code: strings.TrimSpace(r.PostFormValue("code")), Parent: r.PostFormValue("parent"),
		LabelEN: r.PostFormValue("label_en"), LabelZH: r.PostFormValue("label_zh"), Enabled: checked(r, "enabled")}
	c.Position, err = formInt(r, "position", "order")
	if err == nil {
		err = o.store.PutCode(r.Context(), t, key, c)
	}
	if status, msg, ok := formProblem(err); ok {
		return o.renderCodeTable(w, r, v, status, codeTableData{Error: msg, New: c})
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/code-tables/"+url.PathEscape(key)+"?saved=1", http.StatusSeeOther)
	return nil
}
