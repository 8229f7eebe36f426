package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// ClientAssertionType is the client_assertion_type of private_key_jwt (RFC 7523 section 2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid: one token request.
const assertionLifetime = 5 * time.Minute

// SigningAlgs are the JWS algorithms private_key_jwt signs with.
var SigningAlgs = []string{"ES256", "RS256"}

// ClientAssertion is the signed JWT with which client c authenticates itself at the
// authorization server whose identifier (issuer) is audience: private_key_jwt (RFC 7523
// section 3, OpenID Connect Core section 9). iss and sub are the client_id, aud the
// authorization server, with a short lifetime and a fresh jti so that it is good for one
// request. The key is a PEM private key (PKCS #8, SEC 1 EC or PKCS #1 RSA); the algorithm is
// c.SigningAlg, else ES256 for an EC key and RS256 for an RSA one. Errors never quote the key.
func ClientAssertion(c Client, audience string, now time.Time) (string, error) {
	key, err := parsePrivateKey(c.PrivateKey)
	if err != nil {
		return "", err
	}
	alg := c.SigningAlg
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if alg == "" {
			alg = "ES256"
		}
		if alg != "ES256" || k.Curve != elliptic.P256() {
			return "", fmt.Errorf("private_key_jwt: an EC key signs ES256 only, with a P-256 key (signing_alg %q)", alg)
		}
	case *rsa.PrivateKey:
		if alg == "" {
			alg = "RS256"
		}
		if alg != "RS256" {
			return "", fmt.Errorf("private_key_jwt: an RSA key signs RS256 only (signing_alg %q)", alg)
		}
	default:
		return "", fmt.Errorf("private_key_jwt: the private key is neither EC nor RSA")
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	header, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{
		"iss": c.ID, "sub": c.ID, "aud": audience,
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
	})
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			return "", errors.New("private_key_jwt: signing failed")
		}
		// JWS wants r and s as two fixed-width big-endian numbers (RFC 7518 section 3.4),
		// not ASN.1.
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case *rsa.PrivateKey:
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:]); err != nil {
			return "", errors.New("private_key_jwt: signing failed")
		}
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// parsePrivateKey reads the first PEM block of pemText as a private key.
func parsePrivateKey(pemText string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("private_key_jwt: the private key is not PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, errors.New("private_key_jwt: the private key cannot sign")
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("private_key_jwt: the private key is not a PKCS #8, EC or RSA key")
}
