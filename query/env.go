package query

import (
	"net/url"
	"slices"
	"time"

	"github.com/ctid/ctid/account"
)

// Person is a user of the tenant as queries need them: for agent and team pickers, team
// scoping and showing a user id as a name.
type Person struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	TeamID   int64  `json:"team_id,omitempty"`
	TeamName string `json:"team,omitempty"`
	Agent    bool   `json:"agent,omitempty"`
}

// PeopleOf converts account users.
func PeopleOf(users []*account.User) []Person {
	out := make([]Person, 0, len(users))
	for _, u := range users {
		out = append(out, Person{ID: u.ID, Name: u.Name(), TeamID: u.TeamID, TeamName: u.TeamName, Agent: u.Has(account.RoleAgent)})
	}
	return out
}

// Viewer is who runs a query; the server fills it from the signed-in user, never from input.
type Viewer struct {
	UserID int64
	TeamID int64
	Scope  account.RowScope
}

// ViewerOf is the viewer for user u.
func ViewerOf(u *account.User) Viewer {
	return Viewer{UserID: u.ID, TeamID: u.TeamID, Scope: account.ScopeOf(u.Roles)}
}

// Env is what a run knows besides the definition and the request.
type Env struct {
	Now    time.Time
	Loc    *time.Location // the tenant's time zone
	Viewer Viewer
	People []Person
}

// teamMembers lists the user ids of team id.
func (e *Env) teamMembers(team int64) []int64 {
	var ids []int64
	for _, p := range e.People {
		if p.TeamID == team {
			ids = append(ids, p.ID)
		}
	}
	return ids
}

// Visible lists the people whose rows the viewer may see (for pickers).
func (e *Env) Visible() []Person {
	var out []Person
	for _, p := range e.People {
		switch e.Viewer.Scope {
		case account.ScopeAll:
			out = append(out, p)
		case account.ScopeTeam:
			if p.ID == e.Viewer.UserID || (e.Viewer.TeamID != 0 && p.TeamID == e.Viewer.TeamID) {
				out = append(out, p)
			}
		case account.ScopeOwn:
			if p.ID == e.Viewer.UserID {
				out = append(out, p)
			}
		}
	}
	return out
}

// VisibleTeams lists the teams (id → name) the viewer may pick.
func (e *Env) VisibleTeams() map[int64]string {
	out := map[int64]string{}
	for _, p := range e.Visible() {
		if p.TeamID != 0 {
			out[p.TeamID] = p.TeamName
		}
	}
	return out
}

func (e *Env) mayPick(id int64) bool {
	return slices.ContainsFunc(e.Visible(), func(p Person) bool { return p.ID == id })
}

// NameOf is the name of user id, or "" when unknown.
func (e *Env) NameOf(id int64) string {
	for _, p := range e.People {
		if p.ID == id {
			return p.Name
		}
	}
	return ""
}

// Request is one run's input from the search form or the API: condition values, the sort
// the user chose, the page token and size. All of it is untrusted.
type Request struct {
	Values   url.Values
	Sort     string // a sortable column key; "-key" sorts descending
	Page     string // token from the previous page; "" = first page
	PageSize int
}
