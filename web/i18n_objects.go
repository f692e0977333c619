package web

import "github.com/ctid/ctid/account"

// The records pages' text and navigation, merged into the shell's tables when the package
// loads (kept apart so the data-object pages add files rather than edit the shell's).
func init() {
	for lang, m := range objectMessages {
		for k, v := range m {
			messages[lang][k] = v
		}
	}
	nav = append(nav,
		navLink{"/records/customer", "nav.customers", account.PermViewRecords},
		navLink{"/admin/objects", "nav.objects", account.PermConfigure})
}

var objectMessages = map[string]map[string]string{
	"en": {
		"nav.customers":       "Customers",
		"nav.objects":         "Data objects",
		"records.title":       "Records",
		"records.record":      "Record",
		"records.search":      "Name, company, phone…",
		"records.find":        "Search",
		"records.new":         "New",
		"records.total":       "%d records",
		"records.page":        "Page %d of %d",
		"records.saved":       "Saved.",
		"records.save":        "Save",
		"records.delete":      "Delete",
		"records.history":     "History",
		"records.when":        "When",
		"records.who":         "Who",
		"records.action":      "Action",
		"records.changes":     "Changes",
		"objects.title":       "Data objects",
		"objects.default":     "default",
		"objects.partitioned": "monthly partitions",
		"objects.records":     "Records",
		"objects.key":         "Key",
		"objects.label":       "Label",
		"objects.type":        "Type",
		"objects.options":     "Options",
		"objects.position":    "Position",
		"objects.code_tables": "Code tables",
	},
	"zh-CN": {
		"nav.customers":       "客户",
		"nav.objects":         "数据对象",
		"records.title":       "记录",
		"records.record":      "记录",
		"records.search":      "姓名、公司、电话…",
		"records.find":        "查询",
		"records.new":         "新建",
		"records.total":       "共 %d 条",
		"records.page":        "第 %d / %d 页",
		"records.saved":       "已保存。",
		"records.save":        "保存",
		"records.delete":      "删除",
		"records.history":     "修改轨迹",
		"records.when":        "时间",
		"records.who":         "操作人",
		"records.action":      "动作",
		"records.changes":     "变更",
		"objects.title":       "数据对象",
		"objects.default":     "默认",
		"objects.partitioned": "按月分区",
		"objects.records":     "记录",
		"objects.key":         "关键字",
		"objects.label":       "名称",
		"objects.type":        "类型",
		"objects.options":     "选项",
		"objects.position":    "位置",
		"objects.code_tables": "编码",
	},
}
