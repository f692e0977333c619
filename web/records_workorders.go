package web

import (
	"net/http"
	"net/url"

	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
)

// notWorkOrders guards the generic record pages and API: records of work-order, QA and
// operation-log objects are read and written through /workorders and /qa, where rows are
// scoped by role (an agent's own, a team lead's team's), edits are locked against lost
// updates and every save writes the operation log. The generic pages would bypass all three.
func (o *objectPages) notWorkOrders(h func(http.ResponseWriter, *http.Request, *visit) error) func(http.ResponseWriter, *http.Request, *visit) error {
	return func(w http.ResponseWriter, r *http.Request, v *visit) error {
		t, err := tenantOf(v, "records")
		if err != nil {
			return err
		}
		obj, err := o.store.Object(r.Context(), t, r.PathValue("object"))
		if err != nil {
			return err
		}
		switch obj.Kind {
		case dataobject.KindWorkOrder, dataobject.KindOperationLog, dataobject.KindQA:
			return fault.Errorf(fault.Forbidden, "%s records are kept through the work-order and QA pages (/workorders, /api/v1/workorders), not the generic record pages", obj.Kind)
		}
		return h(w, r, v)
	}
}

// openHref is where a query's "open" action leads: the work orders of a call (the action's
// field is a call id, as in the call-history template), a customer's record; "" when the
// target has no page.
func openHref(target, id string) string {
	if id == "" {
		return ""
	}
	switch target {
	case "work_order":
		return "/workorders?call_id=" + url.QueryEscape(id)
	case "customer":
		return "/records/customer/" + url.PathEscape(id)
	case "workorder": // the default work-order object's key: one work order by id
		return "/workorders/" + url.PathEscape(id)
	case "qa_call": // score a bare call
		return "/qa/call/" + url.PathEscape(id)
	}
	return ""
}
