// Command procon-controlplane runs a real, minimal Kubernetes control plane on
// loopback: etcd, kube-apiserver and kube-controller-manager, built from the
// official Go modules (see go.mod and update-gomod.sh).
//
// Why not kind: there is no container engine on the machines procon is
// developed and tested on. Why not envtest: it ships prebuilt binaries from a
// download site, and it runs no controller-manager, so owner-reference garbage
// collection, namespace deletion and ServiceAccount tokens would not behave as
// they do in a cluster.
//
// The launcher generates a private CA and certificates on first start (kept in
// the state directory so restarts reuse them), runs the three components as
// child processes with authentication and RBAC on, writes an admin
// kubeconfig, and writes "ready" once the API server answers /readyz. It stays
// in the foreground until SIGTERM or SIGINT, or until a component dies, and
// then stops the others.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

type ports struct {
	APIServer  int `json:"apiServer"`
	EtcdClient int `json:"etcdClient"`
	EtcdPeer   int `json:"etcdPeer"`
}

func main() {
	stateDir := flag.String("state-dir", "", "directory for certificates, etcd data, logs and the kubeconfig (required)")
	binDir := flag.String("bin-dir", "", "directory holding etcd, kube-apiserver and kube-controller-manager (default: next to this binary)")
	apiPort := flag.Int("port", 0, "kube-apiserver secure port on 127.0.0.1 (default: a free port, kept across restarts)")
	readyTimeout := flag.Duration("ready-timeout", 90*time.Second, "how long to wait for the API server to become ready")
	flag.Parse()
	if *stateDir == "" {
		log.Fatal("--state-dir is required")
	}
	if *binDir == "" {
		self, err := os.Executable()
		if err != nil {
			log.Fatal(err)
		}
		*binDir = filepath.Dir(self)
	}
	if err := run(*stateDir, *binDir, *apiPort, *readyTimeout); err != nil {
		log.Fatalf("control plane: %v", err)
	}
}

func run(stateDir, binDir string, apiPort int, readyTimeout time.Duration) error {
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	pki := filepath.Join(stateDir, "pki")
	logs := filepath.Join(stateDir, "logs")
	for _, d := range []string{pki, logs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	_ = os.Remove(filepath.Join(stateDir, "ready"))

	p, err := loadOrPickPorts(filepath.Join(stateDir, "ports.json"), apiPort)
	if err != nil {
		return err
	}
	if err := ensurePKI(pki); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", p.APIServer)
	adminKubeconfig := filepath.Join(stateDir, "kubeconfig")
	if err := writeKubeconfig(adminKubeconfig, server, pki, "admin"); err != nil {
		return err
	}
	kcmKubeconfig := filepath.Join(stateDir, "controller-manager.kubeconfig")
	if err := writeKubeconfig(kcmKubeconfig, server, pki, "controller-manager"); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	died := make(chan error, 3)
	var started []*exec.Cmd
	defer func() { stopAll(started) }()

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", p.EtcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", p.EtcdPeer)
	etcd, err := start(filepath.Join(binDir, "etcd"), filepath.Join(logs, "etcd.log"), died,
		"--name=procon",
		"--data-dir="+filepath.Join(stateDir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=procon="+peerURL,
		"--listen-metrics-urls=",
		// A throwaway development store: durability is not worth the fsyncs.
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	started = append(started, etcd)

	apiserver, err := start(filepath.Join(binDir, "kube-apiserver"), filepath.Join(logs, "kube-apiserver.log"), died,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(p.APIServer),
		// There is one API server and no Service network to keep an Endpoints
		// object for; "none" stops it from trying.
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--tls-cert-file="+filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file="+filepath.Join(pki, "apiserver.key"),
		"--client-ca-file="+filepath.Join(pki, "ca.crt"),
		"--authorization-mode=RBAC",
		"--anonymous-auth=false",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
		"--cert-dir="+filepath.Join(stateDir, "apiserver-certs"),
		"--profiling=false",
		"--allow-privileged=true",
		"--v=1",
	)
	if err != nil {
		return err
	}
	started = append(started, apiserver)

	if err := waitReady(ctx, server, pki, readyTimeout, died); err != nil {
		return err
	}

	kcm, err := start(filepath.Join(binDir, "kube-controller-manager"), filepath.Join(logs, "kube-controller-manager.log"), died,
		"--kubeconfig="+kcmKubeconfig,
		"--authentication-kubeconfig="+kcmKubeconfig,
		"--authorization-kubeconfig="+kcmKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--leader-elect=false",
		// Only what makes objects behave as in a cluster for an operator:
		// owner-reference cascades, namespace teardown, ServiceAccounts and
		// their tokens, and the kube-root-ca.crt ConfigMap.
		"--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller",
		"--service-account-private-key-file="+filepath.Join(pki, "sa.key"),
		"--root-ca-file="+filepath.Join(pki, "ca.crt"),
		"--use-service-account-credentials=true",
		"--v=1",
	)
	if err != nil {
		return err
	}
	started = append(started, kcm)

	info := map[string]any{
		"server":     server,
		"kubeconfig": adminKubeconfig,
		"pid":        os.Getpid(),
		"ports":      p,
	}
	if err := writeJSON(filepath.Join(stateDir, "ready"), info); err != nil {
		return err
	}
	log.Printf("control plane ready at %s; kubeconfig %s", server, adminKubeconfig)

	select {
	case <-ctx.Done():
		log.Printf("stopping")
		return nil
	case err := <-died:
		return err
	}
}

// start runs a component with its output in logPath and reports its exit on
// died. Each component gets its own process group so a terminal's Ctrl-C
// reaches the launcher only, which then stops them in order.
func start(bin, logPath string, died chan<- error, args ...string) (*exec.Cmd, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: %w (build it with `procon dev cluster build`)", bin, err)
	}
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	go func() {
		err := cmd.Wait()
		out.Close()
		died <- fmt.Errorf("%s exited (%v); see %s", filepath.Base(bin), err, logPath)
	}()
	return cmd, nil
}

// stopAll stops components newest first, so the API server never outlives
// etcd by accident and the controller-manager does not spin on a dead server.
func stopAll(cmds []*exec.Cmd) {
	for i := len(cmds) - 1; i >= 0; i-- {
		c := cmds[i]
		if c.Process == nil || c.ProcessState != nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if err := c.Process.Signal(syscall.Signal(0)); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = c.Process.Kill()
	}
}

func waitReady(ctx context.Context, server, pki string, timeout time.Duration, died <-chan error) error {
	client, err := adminHTTPClient(pki)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(server + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready after %s (last error: %v)", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-died:
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func adminHTTPClient(pki string) (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key"))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}},
	}, nil
}

func loadOrPickPorts(path string, apiPort int) (ports, error) {
	var p ports
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &p); err != nil {
			return p, fmt.Errorf("%s: %w", path, err)
		}
		if apiPort != 0 {
			p.APIServer = apiPort
		}
		return p, writeJSON(path, p)
	}
	var err error
	p.APIServer = apiPort
	for _, port := range []*int{&p.APIServer, &p.EtcdClient, &p.EtcdPeer} {
		if *port == 0 {
			if *port, err = freePort(); err != nil {
				return p, err
			}
		}
	}
	return p, writeJSON(path, p)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ensurePKI creates, once, a CA; the API server's serving certificate; client
// certificates for the admin (group system:masters) and the
// controller-manager (its well-known user, bound by the bootstrap RBAC
// policy); and the ServiceAccount token signing key pair.
func ensurePKI(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "sa.pub")); err == nil {
		return nil
	}
	caKey, caCert, err := newCA()
	if err != nil {
		return err
	}
	if err := writeCert(dir, "ca", caCert, caKey); err != nil {
		return err
	}
	leaves := []struct {
		name string
		tmpl *x509.Certificate
	}{
		{"apiserver", &x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		}},
		{"admin", &x509.Certificate{
			Subject:     pkix.Name{CommonName: "procon-admin", Organization: []string{"system:masters"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		{"controller-manager", &x509.Certificate{
			Subject:     pkix.Name{CommonName: "system:kube-controller-manager"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
	}
	for _, leaf := range leaves {
		key, cert, err := signLeaf(leaf.tmpl, caCert, caKey)
		if err != nil {
			return err
		}
		if err := writeCert(dir, leaf.name, cert, key); err != nil {
			return err
		}
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), saKey); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

func newCA() (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "procon-local-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

func signLeaf(tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().AddDate(10, 0, 0)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

func writeCert(dir, name string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, name+".key"), key)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

// writeKubeconfig embeds the certificates so the file works from anywhere
// (tests copy it, people pass it around).
func writeKubeconfig(path, server, pki, user string) error {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(pki, name))
		return string(b), err
	}
	ca, err1 := read("ca.crt")
	crt, err2 := read(user + ".crt")
	key, err3 := read(user + ".key")
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: procon-local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: procon-local
  context:
    cluster: procon-local
    user: %s
    namespace: default
current-context: procon-local
`, server, b64(ca), user, b64(crt), b64(key), user)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
