package demo

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
)

// The demo tenant's fixed parts; README lists them.
const (
	Tenant        = "demo"
	Password      = "demo1234" // every demo user's login and SIP password
	Domain        = "demo.ctid.local"
	DID           = "4001"
	Queue         = "sales"
	customerCount = 1000
	sharedCount   = 40 // numbers shared by two customers each
	customerSeed  = 20261123
)

// Users has one user per role; agent1–agent3 take the sales queue's calls.
var Users = []account.NewUser{
	{Username: "operator", DisplayName: "Platform Operator", Roles: []string{"operator"}},
	{TenantCode: Tenant, Username: "admin", DisplayName: "Ada Admin", Roles: []string{"admin"}},
	{TenantCode: Tenant, Username: "config", DisplayName: "Carl Config", Roles: []string{"config_admin"}},
	{TenantCode: Tenant, Username: "supervisor", DisplayName: "Sue Supervisor", Roles: []string{"supervisor"}},
	{TenantCode: Tenant, Username: "lead", DisplayName: "Li Lead", Roles: []string{"team_lead"}, Team: "Team A"},
	{TenantCode: Tenant, Username: "qa", DisplayName: "Quinn QA", Roles: []string{"qa"}},
	{TenantCode: Tenant, Username: "agent1", DisplayName: "Wang Fang", Roles: []string{"agent"}, Team: "Team A", Extension: "1001"},
	{TenantCode: Tenant, Username: "agent2", DisplayName: "Zhang Wei", Roles: []string{"agent"}, Team: "Team A", Extension: "1002"},
	{TenantCode: Tenant, Username: "agent3", DisplayName: "Liu Yang", Roles: []string{"agent"}, Team: "Team A", Extension: "1003"},
}

// Deps are what seeding needs.
type Deps struct {
	Pool     *pgxpool.Pool
	Accounts *account.Store
	Objects  *dataobject.Store
	Logger   *slog.Logger
}

// Seed creates what is missing of the demo tenant: the tenant and its SIP domain, the users
// and their SIP passwords, the trunk from 127.0.0.1, the sales queue with its three agents on
// DID 4001, and 1,000 customers. What exists is left as it is.
func Seed(ctx context.Context, d Deps) error {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t, err := d.Accounts.TenantByCode(ctx, Tenant)
	if fault.CodeOf(err) == fault.NotFound {
		t, err = d.Accounts.CreateTenant(ctx, account.NewTenant{Code: Tenant, Name: "Demo Call Centre", Region: "CN",
			TimeZone: "Asia/Shanghai"}, account.Actor{Name: "demo"})
		if err == nil {
			log.Info("created demo tenant", "code", Tenant)
		}
	}
	if err != nil {
		return fmt.Errorf("demo tenant: %w", err)
	}
	if err := cti.SetSIPDomain(ctx, d.Pool, Tenant, Domain); err != nil {
		return fmt.Errorf("demo SIP domain: %w", err)
	}
	var agents []int64
	for _, nu := range Users {
		nu.Password = Password
		u, err := d.Accounts.AddUser(ctx, nu, account.Actor{Name: "demo"})
		if fault.CodeOf(err) == fault.Conflict {
			u, err = findUser(ctx, d.Accounts, t, nu.Username)
		}
		if err != nil {
			return fmt.Errorf("demo user %s: %w", nu.Username, err)
		}
		if nu.Extension != "" {
			if err := cti.SetSIPPassword(ctx, d.Pool, u.ID, Password); err != nil {
				return fmt.Errorf("demo SIP password of %s: %w", nu.Username, err)
			}
			agents = append(agents, u.ID)
		}
	}
	if err := cti.SaveTrunk(ctx, d.Pool, cti.Trunk{Tenant: Tenant, Name: "demo-caller", Source: netip.MustParsePrefix("127.0.0.1/32")}); err != nil {
		return fmt.Errorf("demo trunk: %w", err)
	}
	if err := cti.SaveQueue(ctx, d.Pool, Tenant, cti.Queue{Name: Queue, Strategy: cti.LongestIdle, RingTimeout: 15 * time.Second,
		MaxWait: 2 * time.Minute, WrapUp: 10 * time.Second, ServiceLevel: 20 * time.Second, MissedLimit: 3}); err != nil {
		return fmt.Errorf("demo queue: %w", err)
	}
	for _, id := range agents {
		if err := cti.SetQueueMember(ctx, d.Pool, Tenant, Queue, id, 1); err != nil {
			return fmt.Errorf("demo queue member: %w", err)
		}
	}
	if err := cti.SaveDID(ctx, d.Pool, Tenant, cti.DID{Number: DID, Queue: Queue}); err != nil {
		return fmt.Errorf("demo number: %w", err)
	}
	return seedCustomers(ctx, d, t, log)
}

func findUser(ctx context.Context, accounts *account.Store, t *account.Tenant, username string) (*account.User, error) {
	var tenantID int64
	if t != nil && username != "operator" {
		tenantID = t.ID
	}
	us, err := accounts.ListUsers(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		if u.Username == username {
			return u, nil
		}
	}
	return nil, fault.Errorf(fault.NotFound, "user %q does not exist", username)
}

func seedCustomers(ctx context.Context, d Deps, t *account.Tenant, log *slog.Logger) error {
	var have int
	err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{t.Scope().Schema, "obj_customer"}.Sanitize()).Scan(&have)
	if err != nil {
		return fmt.Errorf("count demo customers: %w", err)
	}
	if have >= customerCount {
		return nil
	}
	start := time.Now()
	for i, c := range Customers() {
		if i < have {
			continue
		}
		values := map[string]any{"name": c.Name, "phones": toAny(c.Phones), "company": c.Company, "level": c.Level}
		if _, err := d.Objects.Create(ctx, t, "customer", values, account.Actor{Name: "demo"}); err != nil {
			return fmt.Errorf("demo customer %d: %w", i, err)
		}
	}
	log.Info("created demo customers", "count", customerCount-have, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Customer is one generated demo customer.
type Customer struct {
	Name, Company, Level string
	Phones               []string
}

var (
	surnames  = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗"}
	given     = []string{"伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "华", "建国", "晓东", "海燕", "志强", "玉兰", "文"}
	companies = []string{"", "", "上海宏达贸易有限公司", "北京华信科技", "深圳市万利电子", "杭州云起网络", "广州南方物流", "成都天府餐饮", "武汉长江建材"}
	levels    = []string{"normal", "normal", "normal", "silver", "gold", "vip"}
	mobile    = []string{"130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "158", "159", "176", "177", "180", "186", "187", "188", "189"}
)

// Customers generates the demo customers, the same every time: mobiles of Chinese carriers,
// some Beijing and Shanghai landlines, some customers with two numbers, and sharedCount numbers
// used by two customers each (families, shared office lines).
func Customers() []Customer {
	r := rand.New(rand.NewPCG(customerSeed, 1))
	out := make([]Customer, 0, customerCount)
	for i := 0; i < customerCount; i++ {
		c := Customer{
			Name:    surnames[r.IntN(len(surnames))] + given[r.IntN(len(given))],
			Company: companies[r.IntN(len(companies))],
			Level:   levels[r.IntN(len(levels))],
		}
		switch {
		case i%25 == 7:
			c.Phones = []string{fmt.Sprintf("010-6%07d", r.IntN(10000000))}
		case i%25 == 13:
			c.Phones = []string{fmt.Sprintf("021-5%07d", r.IntN(10000000))}
		default:
			c.Phones = []string{mobile[r.IntN(len(mobile))] + fmt.Sprintf("%08d", r.IntN(100000000))}
		}
		if i%10 == 3 {
			c.Phones = append(c.Phones, mobile[r.IntN(len(mobile))]+fmt.Sprintf("%08d", r.IntN(100000000)))
		}
		out = append(out, c)
	}
	// The last sharedCount*2 customers pair up: each pair shares the first one's number.
	for k := 0; k < sharedCount; k++ {
		a, b := customerCount-2*sharedCount+2*k, customerCount-2*sharedCount+2*k+1
		out[b].Phones = []string{out[a].Phones[0]}
	}
	return out
}

// Numbers returns caller numbers of the demo customers: known (one customer each) and shared
// (two customers each).
func Numbers() (known, shared []string) {
	cs := Customers()
	for i, c := range cs {
		if i >= customerCount-2*sharedCount {
			if (i-(customerCount-2*sharedCount))%2 == 0 {
				shared = append(shared, c.Phones[0])
			}
			continue
		}
		known = append(known, c.Phones[0])
	}
	return known, shared
}
