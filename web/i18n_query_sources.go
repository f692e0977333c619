package web

// Text of the external data sources page and the query builder's source picker, merged into
// the shell's tables when the package loads.
func init() {
	for lang, m := range querySourceMessages {
		for k, v := range m {
			messages[lang][k] = v
		}
	}
}

var querySourceMessages = map[string]map[string]string{
	"en": {
		"qsources.title":         "External data sources",
		"qsources.key":           "Key",
		"qsources.name":          "Name",
		"qsources.url":           "Connection URL",
		"qsources.url_hint":      "PostgreSQL only; the login should be a read-only one. Its password is never shown.",
		"qsources.password":      "Password",
		"qsources.password_hint": "Write-only. Leave blank to keep the current one (or use the URL's).",
		"qsources.schema":        "Schema",
		"qsources.max_conns":     "Max connections",
		"qsources.timeout":       "Statement timeout (ms)",
		"qsources.updated":       "Changed by",
		"qsources.test":          "Test connection",
		"qsources.build":         "Build a query",
		"qsources.remove":        "Remove",
		"qsources.add":           "Add or change a source",
		"qsources.save":          "Connect and save",
		"qsources.saved":         "Source %s connected and saved.",
		"qsources.removed":       "Source %s removed.",
		"qsources.tested":        "Source %s answers: %d tables readable.",
		"qsources.hint":          "Queries on a source read its tables in READ ONLY transactions with the source's statement timeout; role scoping applies as on the tenant's own tables.",
		"queries.source":         "Data source",
		"queries.source_own":     "This tenant's tables",
		"queries.use_source":     "Use source",
		"queries.sources_link":   "External data sources",
	},
	"zh-CN": {
		"qsources.title":         "外部数据源",
		"qsources.key":           "标识",
		"qsources.name":          "名称",
		"qsources.url":           "连接地址",
		"qsources.url_hint":      "仅支持 PostgreSQL；请使用只读账号。密码不会显示。",
		"qsources.password":      "密码",
		"qsources.password_hint": "只写。留空则保留原密码（或使用地址中的密码）。",
		"qsources.schema":        "模式",
		"qsources.max_conns":     "最大连接数",
		"qsources.timeout":       "语句超时（毫秒）",
		"qsources.updated":       "修改人",
		"qsources.test":          "测试连接",
		"qsources.build":         "新建查询",
		"qsources.remove":        "删除",
		"qsources.add":           "添加或修改数据源",
		"qsources.save":          "连接并保存",
		"qsources.saved":         "数据源 %s 已连接并保存。",
		"qsources.removed":       "数据源 %s 已删除。",
		"qsources.tested":        "数据源 %s 连接正常：可读 %d 张表。",
		"qsources.hint":          "数据源上的查询在只读事务中运行，并受该数据源的语句超时限制；与本租户的表一样按角色限定数据范围。",
		"queries.source":         "数据源",
		"queries.source_own":     "本租户的数据表",
		"queries.use_source":     "使用数据源",
		"queries.sources_link":   "外部数据源",
	},
}
