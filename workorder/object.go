// Package workorder owns work orders (工单) and QA scoring (质检): the default work-order
// object and its operation log (both data objects of package dataobject), saving from a
// screen pop once or many times per call, edits with optimistic locking and history, lists
// scoped by role, assignment, callbacks, QA forms with versions, scores, disputes,
// calibration and summaries.
package workorder

import "github.com/ctid/ctid/dataobject"

// Keys of the default objects (tenant migration 0500_workorder.sql creates them).
const (
	ObjectKey = "workorder"
	LogKey    = "workorder_log"
)

// Field keys of work orders that this package reads or sets. The default object has them;
// a tenant's own work-order objects may leave out any but subject.
const (
	FieldSubject      = "subject"
	FieldType         = "type"
	FieldStatus       = "status"
	FieldPriority     = "priority"
	FieldCustomer     = "customer_id"
	FieldCustomerName = "customer_name"
	FieldCaller       = "caller_number"
	FieldCallID       = "call_id"
	FieldQueue        = "queue"
	FieldTeam         = "team_id"
	FieldResult       = "handling_result"
	FieldCallback     = "callback_at"
)

// Closed statuses: a work order in one of them is not "open" (the pop lists open ones).
var closedStatuses = []string{"resolved", "closed"}

// DefaultLog is the operation-log object linked to the default work-order object.
var DefaultLog = dataobject.NewObject{
	Key: LogKey, Kind: dataobject.KindOperationLog, NameEN: "Work-order log", NameZH: "工单操作日志", IsDefault: true,
	EditColumns: 1, SaveMode: dataobject.SaveMany, Partitioned: true,
	Fields: []dataobject.NewField{
		{Key: dataobject.LogFieldRecord, Type: dataobject.TypeInteger, LabelEN: "Work order", LabelZH: "工单", InList: true, Position: 10},
		{Key: dataobject.LogFieldAction, Type: dataobject.TypeText, LabelEN: "Action", LabelZH: "操作", MaxLength: 20, Required: true, InList: true, Position: 20},
		{Key: dataobject.LogFieldActor, Type: dataobject.TypeText, LabelEN: "User", LabelZH: "操作人", MaxLength: 100, InList: true, Position: 30},
		{Key: dataobject.LogFieldSnapshot, Type: dataobject.TypeLongText, LabelEN: "Snapshot", LabelZH: "快照", Position: 40},
	},
}

// DefaultWorkOrder is the work-order object every tenant starts with; the owning agent is
// the system column owner_id.
var DefaultWorkOrder = dataobject.NewObject{
	Key: ObjectKey, Kind: dataobject.KindWorkOrder, NameEN: "Work orders", NameZH: "工单", IsDefault: true, LogObject: LogKey,
	EditColumns: 2, SaveMode: dataobject.SaveOnce, Audit: true, Partitioned: true,
	Fields: []dataobject.NewField{
		{Key: FieldSubject, Type: dataobject.TypeText, LabelEN: "Subject", LabelZH: "主题", MaxLength: 200, Required: true, Searchable: true, InList: true, Position: 10},
		{Key: FieldType, Type: dataobject.TypeCode, LabelEN: "Type", LabelZH: "工单类型", CodeTable: "wo_type", InList: true, Position: 20},
		{Key: FieldStatus, Type: dataobject.TypeCode, LabelEN: "Status", LabelZH: "状态", CodeTable: "wo_status", Required: true, Default: "open", InList: true, Position: 30},
		{Key: FieldPriority, Type: dataobject.TypeCode, LabelEN: "Priority", LabelZH: "优先级", CodeTable: "wo_priority", Default: "normal", InList: true, Position: 40},
		{Key: "description", Type: dataobject.TypeLongText, LabelEN: "Description", LabelZH: "描述", Searchable: true, Position: 50},
		{Key: FieldCustomer, Type: dataobject.TypeReference, LabelEN: "Customer", LabelZH: "客户", RefObject: "customer", Position: 60},
		{Key: FieldCustomerName, Type: dataobject.TypeText, LabelEN: "Customer name", LabelZH: "客户名称", MaxLength: 100, Searchable: true, InList: true, Position: 70},
		{Key: FieldCaller, Type: dataobject.TypeText, LabelEN: "Caller number", LabelZH: "来电号码", MaxLength: 40, Searchable: true, InList: true, Position: 80},
		{Key: FieldCallID, Type: dataobject.TypeText, LabelEN: "Call id", LabelZH: "通话编号", MaxLength: 128, Position: 90},
		{Key: FieldQueue, Type: dataobject.TypeText, LabelEN: "Queue", LabelZH: "队列", MaxLength: 40, Position: 100},
		{Key: FieldTeam, Type: dataobject.TypeInteger, LabelEN: "Team", LabelZH: "班组", Position: 110},
		{Key: FieldResult, Type: dataobject.TypeText, LabelEN: "Handling result", LabelZH: "处理结果", MaxLength: 500, Position: 120},
		{Key: FieldCallback, Type: dataobject.TypeDateTime, LabelEN: "Callback due", LabelZH: "回访时间", InList: true, Position: 130},
	},
}
