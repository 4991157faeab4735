package webextest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, s *Server, tok, u string, v any) http.Header {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	if v != nil {
		require.NoError(t, json.Unmarshal(body, v))
	}
	return resp.Header
}

type list struct {
	Items []map[string]any `json:"items"`
}

func nextLink(h http.Header) string {
	v := h.Get("Link")
	if i, j := strings.IndexByte(v, '<'), strings.IndexByte(v, '>'); i >= 0 && j > i {
		return v[i+1 : j]
	}
	return ""
}

// Every answer of the stand-in matches Cisco's description, paging works
// as its Link headers say, and the validator does catch what does not
// match.
func TestStandInFollowsTheDescription(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	v, err := NewValidator(s.URL)
	require.NoError(t, err)
	s.SetValidator(v)
	alice := s.AddPerson("alice@example.com", "Alice Archer")
	bob := s.AddPerson("bob@example.com", "Bob Baker")
	s.SetMe(alice, true)
	room := s.AddRoom("Planning", "group", alice, bob)
	other := s.AddRoom("Other", "group", bob)
	var ids []string
	for i := 0; i < 7; i++ {
		ids = append(ids, s.Post(room, bob, "message "+string(rune('a'+i))))
	}
	file := s.AddFile(&File{Name: "notes.txt", ContentType: "text/plain", Data: []byte("hello")})
	s.Post(room, alice, "with a file", file)
	s.Edit(ids[2], "edited")
	s.Delete(ids[3])
	s.Post(other, bob, "elsewhere")
	tok := s.IssueAccessToken()

	var rooms list
	get(t, s, tok, s.URL+"/rooms?sortBy=lastactivity&max=1000", &rooms)
	require.Len(t, rooms.Items, 1, "only the rooms Alice is in")

	var got []string
	for u := s.URL + "/messages?roomId=" + url.QueryEscape(room) + "&max=3"; u != ""; {
		var page list
		h := get(t, s, tok, u, &page)
		require.LessOrEqual(t, len(page.Items), 3)
		for _, m := range page.Items {
			got = append(got, m["id"].(string))
		}
		u = nextLink(h)
	}
	require.Len(t, got, 7, "7 posted, 1 deleted, 1 with a file")

	var ms list
	get(t, s, tok, s.URL+"/memberships?roomId="+url.QueryEscape(room)+"&max=1", &ms)
	require.Len(t, ms.Items, 1)
	var people list
	get(t, s, tok, s.URL+"/people?id="+alice+","+bob, &people)
	require.Len(t, people.Items, 2)
	var events list
	h := get(t, s, tok, s.URL+"/events?resource=messages&max=2", &events)
	require.Len(t, events.Items, 2)
	require.NotEmpty(t, nextLink(h))
	var one map[string]any
	get(t, s, tok, s.URL+"/messages/"+ids[2], &one)
	require.Equal(t, "edited", one["text"])
	get(t, s, tok, s.URL+"/rooms/"+other, &one)
	get(t, s, tok, file, nil)

	body, _ := json.Marshal(map[string]string{"roomId": room, "text": "hi"})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/messages", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	req, _ = http.NewRequest(http.MethodGet, s.URL+"/rooms", nil)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Empty(t, s.Violations())

	// The validator is not a rubber stamp.
	req, _ = http.NewRequest(http.MethodGet, s.URL+"/messages?max=3", nil) // roomId missing
	require.Error(t, v.Request(req, false))
	req, _ = http.NewRequest(http.MethodGet, s.URL+"/nowhere", nil)
	require.Error(t, v.Request(req, false))
	req, _ = http.NewRequest(http.MethodGet, s.URL+"/rooms", nil)
	require.Error(t, v.Response(req, 200, http.Header{"Content-Type": {"application/json"}}, []byte(`{"items":[{"id":"r","colour":"red"}]}`)), "a field Cisco does not describe")
	require.Error(t, v.Response(req, 200, http.Header{"Content-Type": {"application/json"}}, []byte(`{"items":[{"id":5}]}`)))
	require.Error(t, v.Response(req, 299, http.Header{"Content-Type": {"application/json"}}, []byte(`{}`)), "a status Cisco does not describe")
}
