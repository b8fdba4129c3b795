package idp

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"
)

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - MyScrollr (development)</title></head>
<body>
<h1>Sign in to MyScrollr</h1>
<p>Development identity server: any user name signs in.</p>
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label>User name <input name="username" value="demo-user" required maxlength="128"></label>
<h2>{{.App}} wants access to:</h2>
<ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<button type="submit" name="consent" value="allow">Allow</button>
<button type="submit" name="consent" value="deny">Deny</button>
</form>
</body></html>
`))

func (s *Server) pending(id string) (*authRequest, application, bool) {
	s.store.mu.RLock()
	ar, ok := s.store.requests[id]
	s.store.mu.RUnlock()
	if !ok {
		return nil, application{}, false
	}
	app, ok := s.store.app(ar.Req.ClientID)
	return ar, app, ok
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	ar, app, ok := s.pending(r.URL.Query().Get("id"))
	if !ok {
		http.Error(w, "unknown or expired sign-in request", http.StatusBadRequest)
		return
	}
	var words []string
	for _, sc := range s.scopesFor(app, ar.Resource, ar.Req.Scopes) {
		words = append(words, describeScope(sc))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Frame-Options", "DENY")
	_ = loginTmpl.Execute(w, map[string]any{"ID": ar.ID, "App": app.Name, "Scopes": words})
}

// loginSubmit signs the user in, records the consent as a grant and returns
// to op's callback, which issues the code.
func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	ar, app, ok := s.pending(r.PostForm.Get("id"))
	if !ok {
		http.Error(w, "unknown or expired sign-in request", http.StatusBadRequest)
		return
	}
	user := r.PostForm.Get("username")
	if user == "" || len(user) > 128 {
		http.Error(w, "field username: required, at most 128 characters", http.StatusBadRequest)
		return
	}
	if r.PostForm.Get("consent") != "allow" {
		q := url.Values{"error": {"access_denied"}, "error_description": {"the user denied consent"}}
		if ar.Req.State != "" {
			q.Set("state", ar.Req.State)
		}
		_ = s.store.DeleteAuthRequest(r.Context(), ar.ID)
		http.Redirect(w, r, ar.Req.RedirectURI+"?"+q.Encode(), http.StatusFound)
		return
	}
	granted := s.scopesFor(app, ar.Resource, ar.Req.Scopes)
	now := s.now()
	s.store.mu.Lock()
	ar.Subject, ar.Granted, ar.AuthTime, ar.done = user, granted, now, true
	var g *grant
	for _, existing := range s.store.grants {
		if existing.UserID == user && existing.AppID == app.ID {
			g = existing
		}
	}
	if g == nil {
		g = &grant{ID: randomID(21), UserID: user, AppID: app.ID, CreatedAt: now, JTI: randomID(21)}
		s.store.grants[g.ID] = g
	}
	for _, sc := range granted {
		if !slices.Contains(g.Scopes, sc) {
			g.Scopes = append(g.Scopes, sc)
		}
	}
	g.ExpiresAt = now.Add(14 * 24 * time.Hour)
	ar.GrantID = g.ID
	s.store.mu.Unlock()
	http.Redirect(w, r, s.issuer+"/auth/callback?id="+url.QueryEscape(ar.ID), http.StatusFound)
}
