package web

import (
	"net/http"
	"strings"

	"github.com/ctid/ctid/account"
)

// messages holds the UI text in English and Simplified Chinese. A key missing in one language
// falls back to English, then to the key itself (tests check both languages are complete).
var messages = map[string]map[string]string{
	"en": {
		"app.name":            "ctid",
		"app.tagline":         "Call-centre CTI and screen pop",
		"nav.home":            "Home",
		"nav.tenants":         "Tenants",
		"nav.users":           "Users",
		"nav.tokens":          "API tokens",
		"nav.logout":          "Sign out",
		"lang.switch":         "中文",
		"login.title":         "Sign in",
		"login.tenant":        "Tenant code",
		"login.tenant_hint":   "Leave empty to sign in as a platform operator.",
		"login.username":      "Username",
		"login.password":      "Password",
		"login.submit":        "Sign in",
		"login.expired":       "Your session expired. Please sign in again.",
		"login.signed_out":    "You are signed out.",
		"login.no_cookie":     "Your browser did not send the login cookie: enable cookies for this site and reload the page.",
		"home.title":          "Home",
		"home.welcome":        "Welcome, %s",
		"home.tenant":         "Tenant",
		"home.roles":          "Roles",
		"home.team":           "Team",
		"home.extension":      "Extension",
		"home.none":           "none",
		"home.platform":       "Platform (all tenants)",
		"home.your_work":      "Your work",
		"home.tenant_count":   "Tenants on this platform",
		"home.user_count":     "Users in your tenant",
		"role.operator":       "Platform operator",
		"role.admin":          "Tenant admin",
		"role.config_admin":   "Config admin",
		"role.supervisor":     "Supervisor",
		"role.team_lead":      "Team lead",
		"role.qa":             "QA checker",
		"role.agent":          "Agent",
		"work.operator":       "Create tenants (enterprises) and watch the platform.",
		"work.admin":          "Manage users, agents, teams and phones.",
		"work.config_admin":   "Shape data objects, code tables, queries and routing.",
		"work.supervisor":     "Watch the floor live: agents, calls waiting, service level.",
		"work.team_lead":      "Follow your team's agents, calls and work orders.",
		"work.qa":             "Score saved work orders and calls on QA forms.",
		"work.agent":          "Take calls, see who is calling, save work orders.",
		"tenants.title":       "Tenants",
		"tenants.code":        "Code",
		"tenants.name":        "Name",
		"tenants.region":      "Phone region",
		"tenants.tz":          "Time zone",
		"tenants.status":      "Status",
		"tenants.created":     "Created",
		"tenants.new":         "New tenant",
		"tenants.create":      "Create tenant",
		"tenants.created_msg": "Tenant %s created.",
		"users.title":         "Users",
		"users.username":      "Username",
		"users.display":       "Display name",
		"users.roles":         "Roles",
		"users.team":          "Team",
		"users.extension":     "Extension",
		"users.password":      "Password",
		"users.new":           "New user",
		"users.add":           "Add user",
		"users.added_msg":     "User %s added.",
		"tokens.title":        "API tokens",
		"tokens.intro":        "Bearer tokens let other systems call /api/v1 as you. A token is shown once, when it is made.",
		"tokens.name":         "Name",
		"tokens.created":      "Created",
		"tokens.last_used":    "Last used",
		"tokens.state":        "State",
		"tokens.active":       "active",
		"tokens.revoked":      "revoked",
		"tokens.new":          "New token",
		"tokens.create":       "Create token",
		"tokens.revoke":       "Revoke",
		"tokens.copy_now":     "Copy this token now; it will not be shown again:",
		"tokens.never":        "never",
		"error.title":         "Something went wrong",
		"error.back":          "Back to home",
		"list.empty":          "Nothing here yet.",

		// query engine (web/queries*.go)
		"nav.queries":            "Queries",
		"nav.query_admin":        "Query builder",
		"queries.title":          "Queries",
		"queries.admin_title":    "Query builder",
		"queries.allow":          "Allow",
		"queries.allowed":        "queryable",
		"queries.any":            "(any)",
		"queries.build":          "Build a query",
		"queries.builtin":        "standard template",
		"queries.choose":         "Choose",
		"queries.default_preset": "Default period",
		"queries.delete":         "Delete",
		"queries.disallow":       "Disallow",
		"queries.export_json":    "Export JSON",
		"queries.field":          "Field",
		"queries.first":          "First page",
		"queries.from":           "From",
		"queries.import":         "Import JSON",
		"queries.key":            "Key",
		"queries.label":          "Label",
		"queries.next":           "Next page",
		"queries.owner":          "Owner field (agent user id)",
		"queries.save":           "Save query",
		"queries.saved":          "Query %s saved.",
		"queries.search":         "Search",
		"queries.search_by":      "Search by",
		"queries.show":           "Show",
		"queries.showing":        "rows %d–%d",
		"queries.table":          "Table",
		"queries.tables":         "Queryable tables",
		"queries.title_en":       "Title (English)",
		"queries.title_zh":       "Title (Chinese)",
		"queries.to":             "To",
		"queries.total":          "%d rows",
		"queries.totals":         "Totals",
		"preset.today":           "Today",
		"preset.yesterday":       "Yesterday",
		"preset.this_week":       "This week",
		"preset.last_week":       "Last week",
		"preset.this_month":      "This month",
		"preset.last_month":      "Last month",
		"preset.last_7_days":     "Last 7 days",
		"preset.last_30_days":    "Last 30 days",
		"preset.custom":          "Custom (from/to)",
	},
	"zh-CN": {
		"app.name":            "ctid",
		"app.tagline":         "呼叫中心 CTI 与弹屏",
		"nav.home":            "首页",
		"nav.tenants":         "企业",
		"nav.users":           "用户",
		"nav.tokens":          "API 令牌",
		"nav.logout":          "退出",
		"lang.switch":         "English",
		"login.title":         "登录",
		"login.tenant":        "企业代码",
		"login.tenant_hint":   "运营级管理员登录时留空。",
		"login.username":      "用户名",
		"login.password":      "密码",
		"login.submit":        "登录",
		"login.expired":       "会话已过期，请重新登录。",
		"login.signed_out":    "您已退出。",
		"login.no_cookie":     "浏览器未发送登录 Cookie：请允许本站使用 Cookie 并刷新页面。",
		"home.title":          "首页",
		"home.welcome":        "欢迎，%s",
		"home.tenant":         "企业",
		"home.roles":          "角色",
		"home.team":           "班组",
		"home.extension":      "分机",
		"home.none":           "无",
		"home.platform":       "平台（所有企业）",
		"home.your_work":      "您的工作",
		"home.tenant_count":   "平台上的企业",
		"home.user_count":     "本企业用户",
		"role.operator":       "运营级管理员",
		"role.admin":          "企业管理员",
		"role.config_admin":   "企业配置管理员",
		"role.supervisor":     "值班主管",
		"role.team_lead":      "班组长",
		"role.qa":             "质检员",
		"role.agent":          "坐席",
		"work.operator":       "创建企业，查看平台运行。",
		"work.admin":          "管理用户、坐席、班组和话机。",
		"work.config_admin":   "配置数据对象、编码、查询器和路由。",
		"work.supervisor":     "实时监控：坐席状态、排队来电、服务水平。",
		"work.team_lead":      "查看本班组的坐席、通话和工单。",
		"work.qa":             "按质检表为工单和通话评分。",
		"work.agent":          "接听来电，查看来电客户，保存工单。",
		"tenants.title":       "企业",
		"tenants.code":        "代码",
		"tenants.name":        "名称",
		"tenants.region":      "号码区域",
		"tenants.tz":          "时区",
		"tenants.status":      "状态",
		"tenants.created":     "创建时间",
		"tenants.new":         "新建企业",
		"tenants.create":      "创建企业",
		"tenants.created_msg": "企业 %s 已创建。",
		"users.title":         "用户",
		"users.username":      "用户名",
		"users.display":       "显示名称",
		"users.roles":         "角色",
		"users.team":          "班组",
		"users.extension":     "分机",
		"users.password":      "密码",
		"users.new":           "新建用户",
		"users.add":           "添加用户",
		"users.added_msg":     "用户 %s 已添加。",
		"tokens.title":        "API 令牌",
		"tokens.intro":        "Bearer 令牌让其他系统以您的身份调用 /api/v1。令牌只在创建时显示一次。",
		"tokens.name":         "名称",
		"tokens.created":      "创建时间",
		"tokens.last_used":    "最近使用",
		"tokens.state":        "状态",
		"tokens.active":       "有效",
		"tokens.revoked":      "已吊销",
		"tokens.new":          "新建令牌",
		"tokens.create":       "创建令牌",
		"tokens.revoke":       "吊销",
		"tokens.copy_now":     "请立即复制此令牌，它不会再次显示：",
		"tokens.never":        "从未",
		"error.title":         "出错了",
		"error.back":          "返回首页",
		"list.empty":          "暂无内容。",

		// query engine (web/queries*.go)
		"nav.queries":            "查询",
		"nav.query_admin":        "查询器管理",
		"queries.title":          "查询",
		"queries.admin_title":    "查询器管理",
		"queries.allow":          "允许查询",
		"queries.allowed":        "可查询",
		"queries.any":            "（全部）",
		"queries.build":          "新建查询",
		"queries.builtin":        "标准模板",
		"queries.choose":         "选择",
		"queries.default_preset": "默认时间段",
		"queries.delete":         "删除",
		"queries.disallow":       "禁止查询",
		"queries.export_json":    "导出 JSON",
		"queries.field":          "字段",
		"queries.first":          "首页",
		"queries.from":           "从",
		"queries.import":         "导入 JSON",
		"queries.key":            "标识",
		"queries.label":          "标签",
		"queries.next":           "下一页",
		"queries.owner":          "归属字段（坐席用户 ID）",
		"queries.save":           "保存查询",
		"queries.saved":          "查询 %s 已保存。",
		"queries.search":         "查询",
		"queries.search_by":      "查询条件",
		"queries.show":           "显示",
		"queries.showing":        "第 %d–%d 行",
		"queries.table":          "数据表",
		"queries.tables":         "可查询的数据表",
		"queries.title_en":       "标题（英文）",
		"queries.title_zh":       "标题（中文）",
		"queries.to":             "到",
		"queries.total":          "共 %d 行",
		"queries.totals":         "合计",
		"preset.today":           "今天",
		"preset.yesterday":       "昨天",
		"preset.this_week":       "本周",
		"preset.last_week":       "上周",
		"preset.this_month":      "本月",
		"preset.last_month":      "上月",
		"preset.last_7_days":     "最近 7 天",
		"preset.last_30_days":    "最近 30 天",
		"preset.custom":          "自定义（起止）",
	},
}

// tr is the text of key in lang.
func tr(lang, key string) string {
	if m, ok := messages[lang][key]; ok {
		return m
	}
	if m, ok := messages["en"][key]; ok {
		return m
	}
	return key
}

// langOf picks the UI language: the user's saved choice, the language cookie, then the
// browser's Accept-Language.
func (s *Server) langOf(r *http.Request, u *account.User) string {
	if u != nil && u.Locale != "" {
		if _, ok := messages[u.Locale]; ok {
			return u.Locale
		}
	}
	if c, err := r.Cookie(langCookie); err == nil {
		if _, ok := messages[c.Value]; ok {
			return c.Value
		}
	}
	return fromAcceptLanguage(r.Header.Get("Accept-Language"))
}

// fromAcceptLanguage returns zh-CN when Chinese comes before English in the header.
func fromAcceptLanguage(h string) string {
	for _, part := range strings.Split(h, ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(tag)
		switch {
		case strings.HasPrefix(tag, "zh"):
			return "zh-CN"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	return "en"
}
