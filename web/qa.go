package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/workorder"
)

// enableQA adds the QA pages and API; EnableWorkOrders calls it.
func (wo *workOrderPages) enableQA() {
	s := wo.s
	s.mux.HandleFunc("GET /qa/queue", s.page(account.PermScoreQA, wo.qaQueue))
	s.mux.HandleFunc("GET /qa/score/{id}", s.page(account.PermScoreQA, wo.qaScorePage))
	s.mux.HandleFunc("POST /qa/score/{id}", s.page(account.PermScoreQA, wo.qaScoreForm))
	s.mux.HandleFunc("GET /qa/call/{call}", s.page(account.PermScoreQA, wo.qaScorePage))
	s.mux.HandleFunc("POST /qa/call/{call}", s.page(account.PermScoreQA, wo.qaScoreForm))
	s.mux.HandleFunc("GET /qa/scores", s.page(account.PermViewRecords, wo.qaScores))
	s.mux.HandleFunc("GET /qa/scores/{id}", s.page(account.PermViewRecords, wo.qaScoreShow))
	s.mux.HandleFunc("POST /qa/scores/{id}/reply", s.page(account.PermViewRecords, wo.qaReplyForm))
	s.mux.HandleFunc("POST /qa/scores/{id}/resolve", s.page(account.PermScoreQA, wo.qaResolveForm))
	s.mux.HandleFunc("GET /qa/calibration/{id}", s.page(account.PermScoreQA, wo.qaCalibration))
	s.mux.HandleFunc("GET /qa/call/{call}/calibration", s.page(account.PermScoreQA, wo.qaCalibration))
	s.mux.HandleFunc("GET /qa/summary", s.page(account.PermViewRecords, wo.qaSummary))

	s.mux.HandleFunc("GET /api/v1/qa/forms", s.api(account.PermViewRecords, wo.apiQAForms))
	s.mux.HandleFunc("GET /api/v1/qa/forms/{key}", s.api(account.PermViewRecords, wo.apiQAForm))
	s.mux.HandleFunc("PUT /api/v1/qa/forms/{key}", s.api(account.PermConfigure, wo.apiPutQAForm))
	s.mux.HandleFunc("GET /api/v1/qa/queue", s.api(account.PermScoreQA, wo.apiQAQueue))
	s.mux.HandleFunc("POST /api/v1/qa/scores", s.api(account.PermScoreQA, wo.apiScore))
	s.mux.HandleFunc("GET /api/v1/qa/scores", s.api(account.PermViewRecords, wo.apiScores))
	s.mux.HandleFunc("GET /api/v1/qa/scores/{id}", s.api(account.PermViewRecords, wo.apiGetScore))
	s.mux.HandleFunc("POST /api/v1/qa/scores/{id}/acknowledge", s.api(account.PermViewRecords, wo.apiReply(false)))
	s.mux.HandleFunc("POST /api/v1/qa/scores/{id}/dispute", s.api(account.PermViewRecords, wo.apiReply(true)))
	s.mux.HandleFunc("POST /api/v1/qa/scores/{id}/resolve", s.api(account.PermScoreQA, wo.apiResolve))
	s.mux.HandleFunc("GET /api/v1/qa/calibration/{id}", s.api(account.PermScoreQA, wo.apiCalibration))
	s.mux.HandleFunc("GET /api/v1/qa/calls/{call}/calibration", s.api(account.PermScoreQA, wo.apiCalibration))
	s.mux.HandleFunc("GET /api/v1/qa/summary", s.api(account.PermViewRecords, wo.apiSummary))
}

// --- API ---------------------------------------------------------------------------------------

func (wo *workOrderPages) apiQAForms(w http.ResponseWriter, r *http.Request, v *visit) error {
	fs, err := wo.svc.Forms(r.Context(), v.user.Tenant)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": fs, "total": len(fs)})
	return nil
}

func (wo *workOrderPages) apiQAForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	version := 0
	if s := r.URL.Query().Get("version"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fault.Errorf(fault.Invalid, "version %q is not a version number", s)
		}
		version = n
	}
	f, err := wo.svc.Form(r.Context(), v.user.Tenant, r.PathValue("key"), version)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (wo *workOrderPages) apiPutQAForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	var def workorder.FormDef
	if err := decodeJSON(r, &def); err != nil {
		return err
	}
	f, err := wo.svc.PutForm(r.Context(), v.user.Tenant, v.user, r.PathValue("key"), def)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// queueFilter reads the work-order filters and the sample (sample=N percent, seed).
func queueFilter(r *http.Request, loc *time.Location) (workorder.Filter, error) {
	f, err := filterOf(r, loc)
	if err != nil {
		return f, err
	}
	q := r.URL.Query()
	if s := q.Get("sample"); s != "" {
		if f.SamplePercent, err = strconv.Atoi(s); err != nil {
			return f, fault.Errorf(fault.Invalid, "sample %q is not a percentage", s)
		}
	}
	if s := q.Get("seed"); s != "" {
		if f.SampleSeed, err = strconv.ParseInt(s, 10, 64); err != nil {
			return f, fault.Errorf(fault.Invalid, "seed %q is not a number", s)
		}
	}
	return f, nil
}

func (wo *workOrderPages) apiQAQueue(w http.ResponseWriter, r *http.Request, v *visit) error {
	f, err := queueFilter(r, v.user.Tenant.Location())
	if err != nil {
		return err
	}
	p, err := wo.svc.Queue(r.Context(), v.user.Tenant, v.user, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

type scoreRequest struct {
	Form        string             `json:"form"`
	Object      string             `json:"object"`
	RecordID    int64              `json:"record_id"`
	CallID      string             `json:"call_id"`
	Answers     []workorder.Answer `json:"answers"`
	Values      map[string]any     `json:"values"`
	Comment     string             `json:"comment"`
	Calibration bool               `json:"calibration"`
}

func (wo *workOrderPages) apiScore(w http.ResponseWriter, r *http.Request, v *visit) error {
	var req scoreRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	sc, err := wo.svc.Score(r.Context(), v.user.Tenant, v.user, workorder.ScoreInput{Form: req.Form, Object: req.Object,
		RecordID: req.RecordID, CallID: req.CallID, Answers: req.Answers, Values: req.Values, Comment: req.Comment, Calibration: req.Calibration})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, sc)
	return nil
}

func scoreFilterOf(r *http.Request, loc *time.Location) (workorder.ScoreFilter, error) {
	f, err := filterOf(r, loc)
	if err != nil {
		return workorder.ScoreFilter{}, err
	}
	return workorder.ScoreFilter{AgentID: f.AgentID, TeamID: f.TeamID, Status: r.URL.Query().Get("status"), From: f.From, To: f.To, Limit: f.Limit}, nil
}

func (wo *workOrderPages) apiScores(w http.ResponseWriter, r *http.Request, v *visit) error {
	f, err := scoreFilterOf(r, v.user.Tenant.Location())
	if err != nil {
		return err
	}
	list, err := wo.svc.Scores(r.Context(), v.user.Tenant, v.user, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": list, "total": len(list)})
	return nil
}

func (wo *workOrderPages) apiGetScore(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	sc, err := wo.svc.GetScore(r.Context(), v.user.Tenant, v.user, id)
	if err != nil {
		return err
	}
	hist, err := wo.svc.ScoreHistory(r.Context(), v.user.Tenant, v.user, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"score": sc, "history": hist})
	return nil
}

func (wo *workOrderPages) apiReply(dispute bool) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, v *visit) error {
		id, err := parseID(r, "id")
		if err != nil {
			return err
		}
		var req struct {
			Comment string `json:"comment"`
		}
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		var sc *workorder.Score
		if dispute {
			sc, err = wo.svc.Dispute(r.Context(), v.user.Tenant, v.user, id, req.Comment)
		} else {
			sc, err = wo.svc.Acknowledge(r.Context(), v.user.Tenant, v.user, id, req.Comment)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, sc)
		return nil
	}
}

func (wo *workOrderPages) apiResolve(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	var req struct {
		Uphold  bool               `json:"uphold"`
		Answers []workorder.Answer `json:"answers"`
		Comment string             `json:"comment"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	sc, err := wo.svc.Resolve(r.Context(), v.user.Tenant, v.user, id, workorder.Resolution{Uphold: req.Uphold, Answers: req.Answers, Comment: req.Comment})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sc)
	return nil
}

// calibration compares the scores of the work order {id} (of ?object=, "" the default) or
// of the bare call {call}.
func (wo *workOrderPages) calibration(r *http.Request, v *visit) (*workorder.Calibration, error) {
	if call := r.PathValue("call"); call != "" {
		return wo.svc.CalibrateCall(r.Context(), v.user.Tenant, v.user, call)
	}
	id, err := parseID(r, "id")
	if err != nil {
		return nil, err
	}
	return wo.svc.Calibrate(r.Context(), v.user.Tenant, v.user, r.URL.Query().Get("object"), id)
}

func (wo *workOrderPages) apiCalibration(w http.ResponseWriter, r *http.Request, v *visit) error {
	c, err := wo.calibration(r, v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (wo *workOrderPages) apiSummary(w http.ResponseWriter, r *http.Request, v *visit) error {
	f, err := filterOf(r, v.user.Tenant.Location())
	if err != nil {
		return err
	}
	rows, err := wo.svc.Summary(r.Context(), v.user.Tenant, v.user, r.URL.Query().Get("by"), f.From, f.To)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": rows})
	return nil
}

// --- pages -------------------------------------------------------------------------------------

type qaQueueData struct {
	woListData
	Sample string
}

// qaQueue lists the work orders waiting for a score, with the work-order filters and a
// random sample of N %.
func (wo *workOrderPages) qaQueue(w http.ResponseWriter, r *http.Request, v *visit) error {
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
	d := qaQueueData{woListData: woListData{Q: q.Get("q"), From: q.Get("from"), To: q.Get("to"), ShowAgents: true}, Sample: q.Get("sample")}
	f, ferr := queueFilter(r, l.loc)
	if ty := o.Field(workorder.FieldType); ty != nil {
		d.Types = codeOptions(l, ty.CodeTable, f.Type)
	}
	us, err := wo.s.opts.Accounts.ListUsers(ctx, v.user.Tenant.ID)
	if err != nil {
		return err
	}
	for _, u := range us {
		if u.Has(account.RoleAgent) {
			d.Agents = append(d.Agents, woOption{Value: strconv.FormatInt(u.ID, 10), Label: u.Name(), Selected: u.ID == f.AgentID})
		}
	}
	var page *workorder.Page
	if ferr == nil {
		page, ferr = wo.svc.Queue(ctx, v.user.Tenant, v.user, f)
	}
	status, err := listRows(&d.woListData, o, l, page, ferr)
	if err != nil {
		return err
	}
	wo.s.render(w, r, v, status, "qa_queue", "qa.queue", d)
	return nil
}

type qaFact struct{ Label, Value string }

type qaItemView struct {
	workorder.Item
	Choices []woOption
	Comment string
}

type qaSectionView struct {
	Title string
	Items []qaItemView
}

// qaFieldView is a tenant field of the QA score object on the scoring page.
type qaFieldView struct {
	Key, Label, Value string
	Required          bool
}

type qaScorePageData struct {
	ID        int64  // the work order; 0 for a bare call
	Call      string // a bare call's id
	Action    string // where the form posts
	Recording string // the call's recording, when the PBX reported one
	Fields    []qaFieldView
	WorkOrder []qaFact
	Customer  []qaFact
	CDR       []qaFact
	Forms     []woOption
	Form      *workorder.Form
	Sections  []qaSectionView
	Error     string
	Scored    []*workorder.Score
}

// qaScorePage shows a work order, its customer and call, and the chosen QA form to score it.
func (wo *workOrderPages) qaScorePage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return wo.renderScorePage(w, r, v, http.StatusOK, "", nil)
}

func (wo *workOrderPages) renderScorePage(w http.ResponseWriter, r *http.Request, v *visit, status int, errMsg string, given map[string]workorder.Answer) error {
	ctx := r.Context()
	o, err := wo.objects.DefaultObject(ctx, v.user.Tenant, dataobject.KindWorkOrder)
	if err != nil {
		return err
	}
	l, err := wo.labeler(ctx, v, o)
	if err != nil {
		return err
	}
	d := qaScorePageData{Error: errMsg, Call: r.PathValue("call")}
	var cdr *cti.CDR
	if d.Call != "" {
		// A bare call, scored without a work order.
		if cdr, err = wo.svc.ScoringCall(ctx, v.user.Tenant, v.user, d.Call); err != nil {
			return err
		}
		d.Action = "/qa/call/" + url.PathEscape(d.Call)
		d.WorkOrder = append(d.WorkOrder, qaFact{tr(v.lang, "workorders.agent"), l.user(cdr.AgentID)})
	} else {
		if d.ID, err = parseID(r, "id"); err != nil {
			return err
		}
		d.Action = fmt.Sprintf("/qa/score/%d", d.ID)
		it, err := wo.svc.Get(ctx, v.user.Tenant, v.user, o.Key, d.ID)
		if err != nil {
			return err
		}
		d.WorkOrder = append(d.WorkOrder, qaFact{tr(v.lang, "workorders.agent"), l.user(it.OwnerID)}, qaFact{tr(v.lang, "workorders.created"), l.show(nil, it.CreatedAt)})
		for _, f := range o.Visible() {
			if s := l.show(f, it.Values[f.Key]); s != "" {
				d.WorkOrder = append(d.WorkOrder, qaFact{f.Label(v.lang), s})
			}
		}
		if cid, ok := it.Values[workorder.FieldCustomer].(int64); ok {
			if co, err := wo.objects.DefaultObject(ctx, v.user.Tenant, dataobject.KindCustomer); err == nil {
				if rec, err := wo.objects.Get(ctx, v.user.Tenant, co.Key, cid); err == nil {
					for _, f := range co.Visible() {
						if s := l.show(f, rec.Values[f.Key]); s != "" {
							d.Customer = append(d.Customer, qaFact{f.Label(v.lang), s})
						}
					}
				}
			}
		}
		if call, ok := it.Values[workorder.FieldCallID].(string); ok && call != "" && wo.s.opts.Pool != nil {
			cdr, err = cti.CDRByCallID(ctx, wo.s.opts.Pool, v.user.Tenant.Code, call)
			if err != nil && fault.CodeOf(err) != fault.NotFound {
				wo.s.log.Warn("qa: cdr", "tenant", v.user.Tenant.Code, "call", call, "err", err)
			}
		}
	}
	if cdr != nil {
		d.CDR = []qaFact{{tr(v.lang, "qa.call"), cdr.CallID}, {tr(v.lang, "qa.offered"), l.show(nil, cdr.OfferedAt)},
			{tr(v.lang, "qa.caller"), cdr.CallerRaw}, {tr(v.lang, "qa.cdr_queue"), cdr.Queue}, {tr(v.lang, "qa.result"), string(cdr.Result)},
			{tr(v.lang, "qa.talk"), fmt.Sprintf("%.0f s", cdr.TalkSeconds())}, {tr(v.lang, "qa.wait"), fmt.Sprintf("%.0f s", cdr.WaitSeconds())}}
		d.Recording = cdr.RecordingURL
	}
	if qo, err := wo.objects.Object(ctx, v.user.Tenant, workorder.QAObjectKey); err == nil {
		for _, f := range qo.Visible() {
			d.Fields = append(d.Fields, qaFieldView{Key: f.Key, Label: f.Label(v.lang), Value: r.PostFormValue("v_" + f.Key), Required: f.Required})
		}
	} else if fault.CodeOf(err) != fault.NotFound {
		return err
	}
	forms, err := wo.svc.Forms(ctx, v.user.Tenant)
	if err != nil {
		return err
	}
	want := r.URL.Query().Get("form")
	if want == "" && r.Method == http.MethodPost {
		want = r.PostFormValue("form")
	}
	for _, f := range forms {
		if want == "" {
			want = f.Key
		}
		d.Forms = append(d.Forms, woOption{Value: f.Key, Label: f.Name, Selected: f.Key == want})
		if f.Key == want {
			d.Form = f
		}
	}
	if d.Form != nil {
		d.Sections = sectionViews(&d.Form.FormDef, given, v.lang)
	}
	wo.s.render(w, r, v, status, "qa_score", "qa.score", d)
	return nil
}

// sectionViews lays out a form's items with their choices, the given answers selected.
func sectionViews(form *workorder.FormDef, given map[string]workorder.Answer, lang string) []qaSectionView {
	var out []qaSectionView
	for _, s := range form.Sections {
		sv := qaSectionView{Title: s.Title}
		for _, item := range s.Items {
			iv := qaItemView{Item: item, Comment: given[item.Key].Comment}
			var values []string
			switch item.Kind {
			case workorder.ItemYesNo:
				values = []string{workorder.AnswerYes, workorder.AnswerNo}
			case workorder.ItemPassFail:
				values = []string{workorder.AnswerPass, workorder.AnswerFail}
			case workorder.ItemScale:
				for n := item.Max; n >= 0; n-- {
					values = append(values, strconv.Itoa(n))
				}
			}
			if item.AllowNA {
				values = append(values, workorder.AnswerNA)
			}
			for _, val := range values {
				label := val
				if k := "qa.answer." + val; tr(lang, k) != k {
					label = tr(lang, k)
				}
				iv.Choices = append(iv.Choices, woOption{Value: val, Label: label, Selected: strings.EqualFold(strings.TrimSpace(given[item.Key].Value), val)})
			}
			sv.Items = append(sv.Items, iv)
		}
		out = append(out, sv)
	}
	return out
}

// answersOf reads a_<item> and c_<item> form fields for the items of form.
func answersOf(r *http.Request, form *workorder.FormDef) (map[string]workorder.Answer, []workorder.Answer) {
	given := map[string]workorder.Answer{}
	var answers []workorder.Answer
	for _, item := range form.Items() {
		a := workorder.Answer{Item: item.Key, Value: r.PostForm.Get("a_" + item.Key), Comment: strings.TrimSpace(r.PostForm.Get("c_" + item.Key))}
		given[item.Key] = a
		answers = append(answers, a)
	}
	return given, answers
}

// qaScoreForm saves the scoring page (of a work order, or of a bare call); a refused score
// re-renders it with the answers kept.
func (wo *workOrderPages) qaScoreForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	in := workorder.ScoreInput{CallID: r.PathValue("call")}
	if in.CallID == "" {
		id, err := parseID(r, "id")
		if err != nil {
			return err
		}
		in.RecordID = id
	}
	var given map[string]workorder.Answer
	post, err := postedForm(w, r, func(status int, msg string) error { return wo.renderScorePage(w, r, v, status, msg, given) },
		fault.Invalid, fault.Conflict)
	if err != nil {
		return err
	}
	form, err := wo.svc.Form(r.Context(), v.user.Tenant, r.PostForm.Get("form"), 0)
	if err != nil {
		return err
	}
	given, in.Answers = answersOf(r, &form.FormDef)
	in.Form, in.Comment, in.Calibration = form.Key, r.PostForm.Get("comment"), r.PostForm.Get("calibration") == "1"
	for k, vs := range r.PostForm {
		if key, ok := strings.CutPrefix(k, "v_"); ok && len(vs) > 0 && strings.TrimSpace(vs[0]) != "" {
			if in.Values == nil {
				in.Values = map[string]any{}
			}
			in.Values[key] = strings.TrimSpace(vs[0])
		}
	}
	sc, err := wo.svc.Score(r.Context(), v.user.Tenant, v.user, in)
	if err != nil {
		return post.fail(err)
	}
	return post.redirect(fmt.Sprintf("/qa/scores/%d", sc.ID))
}

type qaScoreRow struct {
	*workorder.Score
	Agent   string
	Created string
}

type qaScoresData struct {
	Rows []qaScoreRow
}

// qaScores lists the scores the user may see: an agent's own, a team's, or all.
func (wo *workOrderPages) qaScores(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	f, err := scoreFilterOf(r, v.user.Tenant.Location())
	if err != nil {
		return err
	}
	list, err := wo.svc.Scores(ctx, v.user.Tenant, v.user, f)
	if err != nil {
		return err
	}
	o, err := wo.objects.DefaultObject(ctx, v.user.Tenant, dataobject.KindWorkOrder)
	if err != nil {
		return err
	}
	l, err := wo.labeler(ctx, v, o)
	if err != nil {
		return err
	}
	d := qaScoresData{}
	for _, sc := range list {
		d.Rows = append(d.Rows, qaScoreRow{Score: sc, Agent: l.user(sc.AgentID), Created: l.show(nil, sc.CreatedAt)})
	}
	wo.s.render(w, r, v, http.StatusOK, "qa_scores", "qa.scores", d)
	return nil
}

type qaAnswerView struct {
	Section, Text, Value, Comment string
	Weight                        float64
	Critical                      bool
}

type qaScoreShowData struct {
	Score      *workorder.Score
	Agent      string
	Answers    []qaAnswerView
	History    []workorder.ScoreEvent
	CanReply   bool
	CanResolve bool
	// CanCalibrate links the work order's calibration page (QA).
	CanCalibrate bool
	// CalibrationURL is the calibration page of a bare call's score.
	CalibrationURL string
	Error          string
	// Sections lay out the items for re-scoring a disputed score.
	Sections []qaSectionView
}

// qaScoreShow is one score with its answers and comments; the agent acknowledges or
// disputes it there, and a checker resolves a dispute.
func (wo *workOrderPages) qaScoreShow(w http.ResponseWriter, r *http.Request, v *visit) error {
	return wo.renderScoreShow(w, r, v, http.StatusOK, "")
}

func (wo *workOrderPages) renderScoreShow(w http.ResponseWriter, r *http.Request, v *visit, status int, errMsg string) error {
	ctx := r.Context()
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	sc, err := wo.svc.GetScore(ctx, v.user.Tenant, v.user, id)
	if err != nil {
		return err
	}
	form, err := wo.svc.Form(ctx, v.user.Tenant, sc.Form, sc.FormVersion)
	if err != nil {
		return err
	}
	hist, err := wo.svc.ScoreHistory(ctx, v.user.Tenant, v.user, id)
	if err != nil {
		return err
	}
	agent := "#" + strconv.FormatInt(sc.AgentID, 10)
	if u, err := wo.s.opts.Accounts.UserByID(ctx, sc.AgentID); err == nil {
		agent = u.Name()
	}
	d := qaScoreShowData{Score: sc, Agent: agent, History: hist, Error: errMsg,
		CanReply:     sc.AgentID == v.user.ID && sc.Status == workorder.StatusScored && !sc.Calibration,
		CanResolve:   v.user.Can(account.PermScoreQA) && sc.Status == workorder.StatusDisputed,
		CanCalibrate: v.user.Can(account.PermScoreQA)}
	if sc.RecordID == 0 {
		d.CalibrationURL = "/qa/call/" + url.PathEscape(sc.CallID) + "/calibration"
	}
	byItem := map[string]workorder.Answer{}
	for _, a := range sc.Answers {
		byItem[a.Item] = a
	}
	if d.CanResolve {
		d.Sections = sectionViews(&form.FormDef, byItem, v.lang)
	}
	for _, s := range form.Sections {
		for _, it := range s.Items {
			a := byItem[it.Key]
			d.Answers = append(d.Answers, qaAnswerView{Section: s.Title, Text: it.Text, Value: a.Value, Comment: a.Comment, Weight: it.Weight, Critical: it.Critical})
		}
	}
	wo.s.render(w, r, v, status, "qa_score_show", "qa.score", d)
	return nil
}

func (wo *workOrderPages) qaReplyForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	post, err := postedForm(w, r, func(status int, msg string) error { return wo.renderScoreShow(w, r, v, status, msg) },
		fault.Invalid, fault.Conflict, fault.Forbidden)
	if err != nil {
		return err
	}
	comment := r.PostForm.Get("comment")
	if r.PostForm.Get("action") == "dispute" {
		_, err = wo.svc.Dispute(r.Context(), v.user.Tenant, v.user, id, comment)
	} else {
		_, err = wo.svc.Acknowledge(r.Context(), v.user.Tenant, v.user, id, comment)
	}
	if err != nil {
		return post.fail(err)
	}
	return post.redirect(fmt.Sprintf("/qa/scores/%d", id))
}

// qaResolveForm settles a dispute: uphold the score, or re-score with the form's answers
// (on the score's own form version).
func (wo *workOrderPages) qaResolveForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	post, err := postedForm(w, r, func(status int, msg string) error { return wo.renderScoreShow(w, r, v, status, msg) },
		fault.Invalid, fault.Conflict)
	if err != nil {
		return err
	}
	res := workorder.Resolution{Uphold: r.PostForm.Get("action") != "rescore", Comment: r.PostForm.Get("comment")}
	if !res.Uphold {
		sc, err := wo.svc.GetScore(r.Context(), v.user.Tenant, v.user, id)
		if err != nil {
			return err
		}
		form, err := wo.svc.Form(r.Context(), v.user.Tenant, sc.Form, sc.FormVersion)
		if err != nil {
			return err
		}
		_, res.Answers = answersOf(r, &form.FormDef)
	}
	if _, err := wo.svc.Resolve(r.Context(), v.user.Tenant, v.user, id, res); err != nil {
		return post.fail(err)
	}
	return post.redirect(fmt.Sprintf("/qa/scores/%d", id))
}

type qaCalibrationData struct {
	ID   int64  // the work order
	Call string // or the bare call
	*workorder.Calibration
}

// qaCalibration shows every checker's scoring of one work order, or of one bare call, side
// by side: each item's answers (rows that differ marked) and the spread of the totals.
func (wo *workOrderPages) qaCalibration(w http.ResponseWriter, r *http.Request, v *visit) error {
	d := qaCalibrationData{Call: r.PathValue("call")}
	if d.Call == "" {
		id, err := parseID(r, "id")
		if err != nil {
			return err
		}
		d.ID = id
		r.URL.RawQuery = "" // the page is of the default work-order object
	}
	c, err := wo.calibration(r, v)
	if err != nil {
		return err
	}
	d.Calibration = c
	wo.s.render(w, r, v, http.StatusOK, "qa_calibration", "qa.calibration", d)
	return nil
}

type qaSummaryRow struct {
	workorder.SummaryRow
	Label string
}

type qaSummaryData struct {
	By, From, To string
	Rows         []qaSummaryRow
}

// qaSummary averages scores per agent, team or month, scoped by role.
func (wo *workOrderPages) qaSummary(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	q := r.URL.Query()
	d := qaSummaryData{By: q.Get("by"), From: q.Get("from"), To: q.Get("to")}
	if d.By == "" {
		d.By = workorder.ByAgent
	}
	f, err := filterOf(r, v.user.Tenant.Location())
	if err != nil {
		return err
	}
	rows, err := wo.svc.Summary(ctx, v.user.Tenant, v.user, d.By, f.From, f.To)
	if err != nil {
		return err
	}
	names := map[string]string{}
	us, err := wo.s.opts.Accounts.ListUsers(ctx, v.user.Tenant.ID)
	if err != nil {
		return err
	}
	for _, u := range us {
		if d.By == workorder.ByAgent {
			names[strconv.FormatInt(u.ID, 10)] = u.Name()
		}
		if d.By == workorder.ByTeam && u.TeamID != 0 {
			names[strconv.FormatInt(u.TeamID, 10)] = u.TeamName
		}
	}
	for _, row := range rows {
		label := row.Key
		if n, ok := names[row.Key]; ok {
			label = n
		}
		d.Rows = append(d.Rows, qaSummaryRow{SummaryRow: row, Label: label})
	}
	wo.s.render(w, r, v, http.StatusOK, "qa_summary", "qa.summary", d)
	return nil
}
