package cmd

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Problems is every problem found in one configuration file, each naming
// its key. Its message is one line per problem, each starting with the
// file's path, so a long list stays greppable.
type Problems struct {
	Path string
	List []string
}

func (p *Problems) Error() string {
	lines := make([]string, len(p.List))
	for i, s := range p.List {
		lines[i] = p.Path + ": " + s
	}
	return strings.Join(lines, "\n")
}

func (p *Problems) add(err error) {
	if err == nil {
		return
	}
	if q, ok := err.(*Problems); ok {
		p.List = append(p.List, q.List...)
		return
	}
	// Package validators join several errors with newlines.
	p.List = append(p.List, strings.Split(err.Error(), "\n")...)
}

func (p *Problems) err() error {
	if len(p.List) == 0 {
		return nil
	}
	return p
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// checkShape compares the decoded TOML value v of key with the Go type t
// it will be decoded into, before decoding: every unknown key (with the
// nearest known one) and every value of the wrong type is reported, where
// decoding would stop at the first. It removes what it reports from v's
// tables, so the rest can still be decoded and validated, and returns
// false when v itself is of the wrong type. def holds t's default, shown
// as an example of the wanted value; it may be invalid.
func checkShape(p *Problems, t reflect.Type, def reflect.Value, v any, key string) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
		if def.IsValid() {
			if def.IsNil() {
				def = reflect.Value{}
			} else {
				def = def.Elem()
			}
		}
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) || t == reflect.TypeFor[time.Duration]() {
		if _, ok := v.(string); !ok {
			p.List = append(p.List, typeProblem(key, t, def, v))
			return false
		}
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		table, ok := v.(map[string]any)
		if !ok {
			p.List = append(p.List, typeProblem(key, t, def, v))
			return false
		}
		// Known keys in the order of nora.toml.example, then unknown ones.
		names, fields := tomlFields(t)
		for _, k := range names {
			v, ok := table[k]
			if !ok {
				continue
			}
			f, fd := fields[k], reflect.Value{}
			if def.IsValid() {
				fd = def.FieldByIndex(f.Index)
			}
			if !checkShape(p, f.Type, fd, v, joinKey(key, k)) {
				delete(table, k)
			}
		}
		for _, k := range sortedKeys(table) {
			if _, ok := fields[k]; !ok {
				p.List = append(p.List, unknownKey(joinKey(key, k), k, fields))
				delete(table, k)
			}
		}
	case reflect.Map:
		table, ok := v.(map[string]any)
		if !ok {
			p.List = append(p.List, typeProblem(key, t, def, v))
			return false
		}
		for _, k := range sortedKeys(table) {
			if !checkShape(p, t.Elem(), reflect.Value{}, table[k], joinKey(key, k)) {
				delete(table, k)
			}
		}
	case reflect.Slice, reflect.Array:
		list := reflect.ValueOf(v)
		if list.Kind() != reflect.Slice {
			p.List = append(p.List, typeProblem(key, t, def, v))
			return false
		}
		ok := true
		for i := range list.Len() {
			// A wrong element drops the list: dropping the element
			// would renumber the others.
			ok = checkShape(p, t.Elem(), reflect.Value{}, list.Index(i).Interface(), fmt.Sprintf("%s[%d]", key, i)) && ok
		}
		return ok
	case reflect.String:
		if _, ok := v.(string); !ok {
			p.List = append(p.List, typeProblem(key, t, def, v))
			return false
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			p.List = append(p.List, typeProblem(key, t, def, v))
			return false
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, ok := v.(int64); !ok {
			p.List = append(p.List, typeProblem(key, t, def, v))
			return false
		}
	case reflect.Float32, reflect.Float64:
		switch v.(type) {
		case int64, float64:
		default:
			p.List = append(p.List, typeProblem(key, t, def, v))
			return false
		}
	}
	return true
}

// tomlFields maps the TOML keys of struct t to its fields, embedded
// structs' keys included as the decoder sees them, and lists the keys in
// the order of the fields.
func tomlFields(t reflect.Type) (names []string, fields map[string]reflect.StructField) {
	out := map[string]reflect.StructField{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		switch {
		case tag == "-":
			continue
		case f.Anonymous && tag == "":
			continue // its fields are visible fields themselves
		case tag == "":
			tag = f.Name
		}
		out[tag] = f
		names = append(names, tag)
	}
	return names, out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// unknownKey names key and, when one is close, the known key the author
// probably meant.
func unknownKey(key, name string, fields map[string]reflect.StructField) string {
	best, bestD := "", len(name)/3+2
	for k := range fields {
		if d := levenshtein(name, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if best == "" {
		return key + ": unknown key"
	}
	return fmt.Sprintf("%s: unknown key, did you mean %q?", key, best)
}

// levenshtein is the number of single-character edits from a to b.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// typeProblem says in words what key wants and what the file has.
func typeProblem(key string, t reflect.Type, def reflect.Value, v any) string {
	want := wantWords(t)
	if def.IsValid() && !def.IsZero() {
		switch def.Kind() {
		case reflect.String:
			want += fmt.Sprintf(" like %q", def.String())
		case reflect.Int, reflect.Int64, reflect.Float64, reflect.Bool:
			want += fmt.Sprintf(" like %v", def.Interface())
		}
	}
	return fmt.Sprintf("%s: want %s, got %s", key, want, gotWords(v))
}

func wantWords(t reflect.Type) string {
	if reflect.PointerTo(t).Implements(textUnmarshaler) || t == reflect.TypeFor[time.Duration]() {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a table"
	case reflect.Slice, reflect.Array:
		if e := t.Elem(); e.Kind() == reflect.Struct || (e.Kind() == reflect.Pointer && e.Elem().Kind() == reflect.Struct) {
			return "a list of tables"
		}
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a whole number"
}

func gotWords(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64, float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "a list"
	case time.Time:
		return "the date " + x.Format(time.RFC3339)
	}
	return fmt.Sprintf("%v", v)
}
