package web

// Text of the query pages' batch delete and export progress, merged into the shell's tables
// when the package loads.
func init() {
	for lang, m := range queryBatchMessages {
		for k, v := range m {
			messages[lang][k] = v
		}
	}
}

var queryBatchMessages = map[string]map[string]string{
	"en": {
		"queries.batch_delete":    "Offer batch delete (customer and base-data objects; needs the id column)",
		"queries.delete.title":    "Delete rows",
		"queries.delete.selected": "Delete selected",
		"queries.delete.all":      "Delete all %d matching",
		"queries.delete.select":   "Select",
		"queries.delete.confirm":  "%d rows will be deleted. They leave lists, searches and caller matching; their history stays.",
		"queries.delete.yes":      "Delete %d rows",
		"queries.delete.cancel":   "Cancel",
		"queries.delete.done":     "%d rows deleted.",
		"queries.delete.nothing":  "None of the chosen rows can be deleted: they no longer match the search or are not yours to see.",
		"queries.delete.back":     "Back to the results",
		"queries.export.running":  "Exporting… %s rows written",
		"queries.export.done":     "Export done: %s rows.",
		"queries.export.download": "Download",
		"queries.export.failed":   "The export failed: %s",
	},
	"zh-CN": {
		"queries.batch_delete":    "提供批量删除（客户和基础数据对象；需要 id 列）",
		"queries.delete.title":    "删除记录",
		"queries.delete.selected": "删除所选",
		"queries.delete.all":      "删除全部 %d 条匹配记录",
		"queries.delete.select":   "选择",
		"queries.delete.confirm":  "将删除 %d 条记录。它们将不再出现在列表、搜索和来电匹配中；历史记录保留。",
		"queries.delete.yes":      "删除 %d 条记录",
		"queries.delete.cancel":   "取消",
		"queries.delete.done":     "已删除 %d 条记录。",
		"queries.delete.nothing":  "所选记录均不可删除：它们已不符合查询条件，或不在您的可见范围内。",
		"queries.delete.back":     "返回查询结果",
		"queries.export.running":  "正在导出… 已写入 %s 行",
		"queries.export.done":     "导出完成：共 %s 行。",
		"queries.export.download": "下载",
		"queries.export.failed":   "导出失败：%s",
	},
}
