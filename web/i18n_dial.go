package web

// Click-to-dial's text, merged into the shell's tables when the package loads; the console's
// script gets the dial.* keys too.
func init() {
	for lang, m := range dialMessages {
		for k, v := range m {
			messages[lang][k] = v
		}
	}
	for k := range dialMessages["en"] {
		consoleKeys = append(consoleKeys, k)
	}
}

var dialMessages = map[string]map[string]string{
	"en": {
		"dial.title":                    "Call this number from your phone",
		"dial.calling":                  "Calling…",
		"dial.ringing_agent":            "Your phone is ringing: pick it up to call the number.",
		"dial.ringing_number":           "The number is ringing…",
		"dial.connected":                "Connected.",
		"dial.hang_up":                  "Hang up",
		"dial.fallback":                 "ctid cannot call your phone; your softphone dials instead.",
		"dial.reason.agent_no_answer":   "Your phone did not answer.",
		"dial.reason.agent_declined":    "Your phone declined the call.",
		"dial.reason.agent_unreachable": "Your phone could not be reached.",
		"dial.reason.busy":              "The number is busy.",
		"dial.reason.no_answer":         "The number did not answer.",
		"dial.reason.trunk_failed":      "The call could not be placed (trunk).",
		"dial.reason.agent_hung_up":     "You hung up before the number answered.",
		"dial.reason.cancelled":         "Cancelled.",
		"dial.reason.hung_up":           "Call ended.",
		"dial.result.answered":          "Call ended.",
		"dial.result.busy":              "The number is busy.",
		"dial.result.no_answer":         "Nobody answered.",
		"dial.result.failed":            "The call failed.",
		"dial.result.rejected":          "The call was declined.",
		"dial.result.abandoned":         "The call was cancelled.",
	},
	"zh-CN": {
		"dial.title":                    "用您的话机拨打此号码",
		"dial.calling":                  "正在呼叫…",
		"dial.ringing_agent":            "您的话机正在振铃：请摘机以拨打该号码。",
		"dial.ringing_number":           "对方正在振铃…",
		"dial.connected":                "已接通。",
		"dial.hang_up":                  "挂断",
		"dial.fallback":                 "ctid 无法呼叫您的话机，改由您的软电话拨打。",
		"dial.reason.agent_no_answer":   "您的话机未应答。",
		"dial.reason.agent_declined":    "您的话机拒接了呼叫。",
		"dial.reason.agent_unreachable": "无法联系到您的话机。",
		"dial.reason.busy":              "对方忙。",
		"dial.reason.no_answer":         "对方无人接听。",
		"dial.reason.trunk_failed":      "呼叫未能发出（中继）。",
		"dial.reason.agent_hung_up":     "对方接听前您已挂机。",
		"dial.reason.cancelled":         "已取消。",
		"dial.reason.hung_up":           "通话结束。",
		"dial.result.answered":          "通话结束。",
		"dial.result.busy":              "对方忙。",
		"dial.result.no_answer":         "无人接听。",
		"dial.result.failed":            "呼叫失败。",
		"dial.result.rejected":          "呼叫被拒绝。",
		"dial.result.abandoned":         "呼叫已取消。",
	},
}
