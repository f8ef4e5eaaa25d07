package slowpath

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadDDTSigningKey: the signing key is read from PKCS #8 and PKCS #1
// PEM; other key types, short RSA keys and non-key PEM are refused with a
// reason. The public key reads from PKIX and PKCS #1 PEM.
func TestLoadDDTSigningKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	k8, err := LoadDDTSigningKey("../wire/testdata/ddt_rsa_key.pem")
	if err != nil || k8.N.BitLen() != 2048 {
		t.Fatalf("PKCS #8 key: %v", err)
	}
	if k1, err := LoadDDTSigningKey(write("pkcs1.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k8))); err != nil || !k1.Equal(k8) {
		t.Fatalf("PKCS #1 key: %v", err)
	}
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	for _, tc := range []struct{ name, file, want string }{
		{"short", write("short.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(short)), "1024-bit RSA key"},
		{"ecdsa", write("ec.pem", "PRIVATE KEY", ecDER), "RSA-SHA256"},
		{"certificate", write("cert.pem", "CERTIFICATE", []byte{1}), `PEM block "CERTIFICATE"`},
		{"not PEM", "ddt_config_test.go", "no PEM block"},
		{"missing", filepath.Join(dir, "none.pem"), "no such file"},
	} {
		if _, err := LoadDDTSigningKey(tc.file); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	pubPEM, err := os.ReadFile("../wire/testdata/ddt_rsa_pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParseDDTPublicKey(pubPEM)
	if err != nil || !pub.Equal(&k8.PublicKey) {
		t.Fatalf("PKIX public key: %v", err)
	}
	p1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k8.PublicKey)})
	if pub, err := ParseDDTPublicKey(p1); err != nil || !pub.Equal(&k8.PublicKey) {
		t.Fatalf("PKCS #1 public key: %v", err)
	}
	if DDTKeyTag(&k8.PublicKey) == DDTKeyTag(&short.PublicKey) {
		t.Fatal("two keys, one key tag")
	}
}
