package ui

import (
	"strings"
	"testing"
)

// TestSignedAndLastPulled: a tag whose manifest has a signature among its
// referrers is signed, one without is not, and the page shows both
// columns.
func TestSignedAndLastPulled(t *testing.T) {
	f := newFixture(t)
	_, body := send(t, "GET", f.open.URL+"/api/v1/repositories/team/app/tags", nil, nil, nil)
	if !strings.Contains(body, `"name":"v1","digest":"`+f.image.String()) || !strings.Contains(body, `"signed":true`) || !strings.Contains(body, `"signed":false`) {
		t.Errorf("tags = %s, want v1 signed and multi not", body)
	}
	for _, s := range []string{`"name":"multi"`, `"name":"v1"`} {
		i := strings.Index(body, s)
		end := strings.Index(body[i:], "}")
		signed := strings.Contains(body[i:i+end], `"signed":true`)
		if signed != (s == `"name":"v1"`) {
			t.Errorf("%s signed = %v", s, signed)
		}
	}
	if _, page := send(t, "GET", f.open.URL+"/ui/repositories/team/app", nil, nil, nil); !strings.Contains(page, "Last pulled") || !strings.Contains(page, ">signed<") {
		t.Errorf("repository page without the Last pulled and Signed columns:\n%s", page)
	}
}
