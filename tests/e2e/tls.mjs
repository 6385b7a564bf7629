// A throw-away certificate authority and a certificate for 127.0.0.1 it signed, made with the
// openssl command (Debian's base system has it), for tests that must speak https: Microsoft's
// client libraries refuse plain-http authorities. The test process trusts the CA for the rest of
// its life (tls.setDefaultCACertificates, Node ≥ 23.5), as NODE_EXTRA_CA_CERTS would at start-up.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";

/** { ca, key, cert } in PEM. Trusts `ca` in this process. */
export function localTls() {
  const dir = mkdtempSync(path.join(tmpdir(), "edge-sts-tls-"));
  const file = (name) => path.join(dir, name);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  try {
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
      "-subj", "/CN=edge-sts test CA", "-keyout", file("ca.key"), "-out", file("ca.pem"));
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-subj", "/CN=127.0.0.1", "-keyout", file("server.key"), "-out", file("server.csr"));
    writeFileSync(file("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n");
    openssl("x509", "-req", "-in", file("server.csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"),
      "-CAcreateserial", "-days", "2", "-extfile", file("ext.cnf"), "-out", file("server.pem"));
    const pem = { ca: readFileSync(file("ca.pem"), "utf8"), key: readFileSync(file("server.key"), "utf8"), cert: readFileSync(file("server.pem"), "utf8") };
    tls.setDefaultCACertificates([...tls.getCACertificates("default"), pem.ca]);
    return pem;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
