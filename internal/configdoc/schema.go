package configdoc

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// Scalar says how a configuration file writes a type that a decode hook
// parses (an address, a duration, an enumeration).
type Scalar struct {
	// Type is the type as the operator writes it ("address").
	Type string
	// Example is a YAML value of the type.
	Example string
	// Allowed are the accepted values of an enumeration, each with its
	// aliases ("hmac-sha256-128 (sha256)").
	Allowed []string
	// Default is the value an absent key means ("" for the zero value).
	Default string
}

// Schema is what a reference is built from.
type Schema struct {
	// Root is the struct type of the whole file.
	Root reflect.Type
	// Source is the module's source, for doc comments and constants.
	Source *Source
	// Scalars are the types the loader parses from strings.
	Scalars map[reflect.Type]Scalar
	// Strings are the plain string keys, by path, whose values the loader
	// checks against a list.
	Strings map[string]Scalar
	// Defaults returns the keys the loader fills in a section of type t
	// when the file leaves them out (nil: none).
	Defaults func(t reflect.Type) map[string]any
	// Reload says whether SIGHUP changes the key path.
	Reload func(path string) string
}

// Key is one key of the reference.
type Key struct {
	// Path is the key's full YAML path; "[]" marks a list element
	// ("sites[].keys[].id").
	Path string
	// Type is the value's type as written in a file.
	Type string
	// Section is set for a section or a list of sections: its keys
	// follow it.
	Section bool
	// Default is the value (or behaviour) when the key is absent.
	Default string
	// Allowed lists the accepted values of an enumeration or the range of
	// a sized integer.
	Allowed string
	// Reload says whether SIGHUP can change it.
	Reload string
	// Doc is the field's doc comment, Go field names of its struct
	// replaced by their keys.
	Doc string
	// Example is a YAML value of the key (empty for sections).
	Example string
}

// Keys walks the schema and returns every key in file order.
func (s *Schema) Keys() ([]Key, error) {
	var keys []Key
	if err := s.walk(s.Root, "", &keys); err != nil {
		return nil, err
	}
	// A section reloads as its keys do, or "per key".
	for i := range keys {
		if !keys[i].Section {
			continue
		}
		p, common := keys[i].Path, ""
		for _, k := range keys[i+1:] {
			if !strings.HasPrefix(k.Path, p+".") && !strings.HasPrefix(k.Path, p+"[].") {
				break
			}
			switch {
			case k.Section:
			case common == "":
				common = k.Reload
			case common != k.Reload:
				common = "per key"
			}
		}
		if common != "" {
			keys[i].Reload = common
		}
	}
	return keys, nil
}

// fieldKey is a field's key: its mapstructure tag without options
// ("" for a field the file cannot set, "," for a squashed one).
func fieldKey(f reflect.StructField) (key string, squash bool) {
	tag := f.Tag.Get("mapstructure")
	name, opts, _ := strings.Cut(tag, ",")
	if strings.Contains(","+opts+",", ",squash,") {
		return "", true
	}
	if name == "-" {
		return "", false
	}
	return name, false
}

// KeyOf returns the key of the field named field of struct type t ("" if
// it has none).
func KeyOf(t reflect.Type, field string) string {
	f, ok := t.FieldByName(field)
	if !ok {
		return ""
	}
	k, _ := fieldKey(f)
	return k
}

// walk adds the keys of struct type t under prefix.
func (s *Schema) walk(t reflect.Type, prefix string, keys *[]Key) error {
	docs, err := s.Source.FieldDocs(t)
	if err != nil {
		return err
	}
	names := map[string]string{} // Go field name -> key, for the docs
	for i := range t.NumField() {
		if k, _ := fieldKey(t.Field(i)); k != "" {
			names[t.Field(i).Name] = k
		}
	}
	var defaults map[string]any
	if s.Defaults != nil {
		defaults = s.Defaults(t)
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, squash := fieldKey(f)
		if squash {
			if err := s.walk(f.Type, prefix, keys); err != nil {
				return err
			}
			continue
		}
		if key == "" {
			if f.Tag.Get("mapstructure") == "" {
				return fmt.Errorf("%s.%s: no mapstructure tag", t, f.Name)
			}
			continue
		}
		d := docs[f.Name]
		if d == "" && f.Type.Kind() == reflect.Struct {
			if d, err = s.Source.TypeDoc(f.Type); err != nil {
				return err
			}
		}
		doc := renameFields(d, f.Name, names)
		k := Key{Path: prefix + key, Doc: doc, Reload: s.Reload(prefix + key)}
		if d, ok := defaults[key]; ok {
			k.Default = fmt.Sprint(d)
		} else {
			k.Default = docDefault(doc)
		}
		sub, err := s.describe(&k, f.Type)
		if err != nil {
			return fmt.Errorf("%s: %w", k.Path, err)
		}
		if k.Default == "" {
			k.Default = zero(f.Type)
		}
		*keys = append(*keys, k)
		if sub != nil {
			p := k.Path + "."
			if f.Type.Kind() == reflect.Slice {
				p = k.Path + "[]."
			}
			if err := s.walk(sub, p, keys); err != nil {
				return err
			}
		}
	}
	return nil
}

// describe fills the type, allowed values and example of k, a field of
// type t, and returns the struct type whose keys follow (nil for a value).
func (s *Schema) describe(k *Key, t reflect.Type) (reflect.Type, error) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	sc, ok := s.Scalars[t]
	if str, isStr := s.Strings[k.Path]; isStr && t.Kind() == reflect.String {
		sc, ok = str, true
	}
	if ok {
		k.Type, k.Example, k.Allowed = sc.Type, sc.Example, strings.Join(sc.Allowed, ", ")
		if sc.Default != "" {
			k.Default = sc.Default
		}
		return nil, nil
	}
	switch t.Kind() {
	case reflect.Struct:
		k.Type, k.Section = "section", true
		return t, nil
	case reflect.Slice:
		el := t.Elem()
		if sc, ok := s.Scalars[el]; ok {
			k.Type, k.Example, k.Allowed = "list of "+plural(sc.Type), "["+sc.Example+"]", strings.Join(sc.Allowed, ", ")
			return nil, nil
		}
		if el.Kind() == reflect.Struct {
			k.Type, k.Section = "list of sections", true
			return el, nil
		}
		var e Key
		if _, err := s.describe(&e, el); err != nil {
			return nil, err
		}
		k.Type, k.Example, k.Allowed = "list of "+plural(e.Type), "["+e.Example+"]", e.Allowed
		return nil, nil
	case reflect.Bool:
		k.Type, k.Example = "boolean", "true"
	case reflect.Int, reflect.Int64:
		k.Type, k.Example = "integer", "1"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		k.Type, k.Example = "integer", "1"
		k.Allowed = fmt.Sprintf("0..%d", uint64(1)<<t.Bits()-1)
		if t.Bits() == 64 {
			k.Allowed = "0..18446744073709551615"
		}
	case reflect.Float32, reflect.Float64:
		k.Type, k.Example = "number", "1.5"
	case reflect.String:
		k.Type, k.Example = "string", "x"
		if t.PkgPath() != "" {
			vals, err := s.Source.Consts(t)
			if err != nil {
				return nil, err
			}
			if len(vals) > 0 {
				k.Allowed, k.Example = strings.Join(vals, ", "), vals[0]
			}
		}
	default:
		return nil, fmt.Errorf("no description of type %s", t)
	}
	return nil, nil
}

// plural turns a type name into the element type of a list: the last
// word before any parenthesis takes the plural ("address[:port]" becomes
// "addresses[:port]").
func plural(t string) string {
	noun, paren, _ := strings.Cut(t, " (")
	if paren != "" {
		paren = " (" + paren
	}
	i := strings.LastIndex(noun, " ") + 1
	j := i
	for j < len(noun) && noun[j] >= 'a' && noun[j] <= 'z' {
		j++
	}
	word := noun[i:j]
	switch {
	case strings.HasSuffix(word, "ss"), strings.HasSuffix(word, "x"):
		word += "es"
	case !strings.HasSuffix(word, "s"):
		word += "s"
	}
	return noun[:i] + word + noun[j:] + paren
}

// zero is how the zero value of t reads in a file.
func zero(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "false"
	case reflect.String:
		return `""`
	case reflect.Slice:
		return "[]"
	case reflect.Struct, reflect.Pointer:
		return ""
	}
	if t.PkgPath() == "time" {
		return "0s"
	}
	return "0"
}

// renameFields replaces the Go names of a struct's fields in doc by their
// keys: the field's own name opening the comment, and the CamelCase names
// of the others (RingSize becomes ring_size; ETR or RLOCs, which are also
// words, stay).
func renameFields(doc, field string, names map[string]string) string {
	// The opening name, unless the comment is shared ("Low and High ...").
	if rest, ok := strings.CutPrefix(doc, field+" "); ok && names[field] != "" && !strings.HasPrefix(rest, "and ") {
		doc = "`" + names[field] + "` " + rest
	}
	return wordRE.ReplaceAllStringFunc(doc, func(w string) string {
		if k, ok := names[w]; ok && camelRE.MatchString(w) {
			return "`" + k + "`"
		}
		return w
	})
}

var (
	wordRE  = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)
	camelRE = regexp.MustCompile(`[a-z][A-Z]`)
	// defaultREs find a default in a doc comment, most specific first:
	// "(default 1)", "driver (default)", "(0: 60 s)", "0 means 2048",
	// `"" disables it`.
	defaultParen = regexp.MustCompile(`\(default (.*)`)
	defaultWord  = regexp.MustCompile(`([\w-]+) \(default\)`)
	defaultZero  = regexp.MustCompile(`\(0: (.*)`)
	defaultMeans = regexp.MustCompile(`(?:^|[ (;,])0 means (.*)`)
	defaultVerb  = regexp.MustCompile(`(?:^|[ (;,])(0|""|empty|nil|invalid) (takes|disables|leaves|registers|means) (.*)`)
)

// docDefault extracts the default from a doc comment ("" if it names
// none).
func docDefault(doc string) string {
	if m := defaultParen.FindStringSubmatch(doc); m != nil {
		return clause(m[1])
	}
	if m := defaultWord.FindStringSubmatch(doc); m != nil {
		return m[1]
	}
	if m := defaultZero.FindStringSubmatch(doc); m != nil {
		return clause(m[1])
	}
	if m := defaultMeans.FindStringSubmatch(doc); m != nil {
		return clause(m[1])
	}
	if m := defaultVerb.FindStringSubmatch(doc); m != nil {
		rest := clause(m[3])
		zero := m[1]
		switch zero {
		case "nil":
			zero = "absent"
		case "invalid":
			zero = "absent"
		}
		if m[2] == "takes" || m[2] == "means" {
			return zero + ": " + rest
		}
		return zero + ": " + m[2] + " " + rest
	}
	return ""
}

// clause cuts s at the end of its clause: a ';', a '.' or ',' ending a
// sentence or starting a citation, or the ')' closing an enclosing
// parenthesis.
func clause(s string) string {
	depth := 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return strings.TrimSpace(s[:i])
			}
			depth--
		case ';':
			if depth == 0 {
				return strings.TrimSpace(s[:i])
			}
		case '.', ',':
			rest := s[i+1:]
			if depth == 0 && (rest == "" || strings.HasPrefix(rest, " ") && c == '.' || strings.HasPrefix(rest, " RFC")) {
				return strings.TrimSpace(s[:i])
			}
		}
	}
	return strings.TrimSpace(s)
}
