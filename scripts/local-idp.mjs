// A local identity provider for trying edge-sts by hand (the README's walkthrough).
//
//   npm run idp                        serves http://127.0.0.1:9000 (PORT=… for another)
//   curl -s 'http://127.0.0.1:9000/token?sub=repo:acme/app:ref:refs/heads/main&aud=https://sts.example.com'
//
// It publishes OIDC discovery and a JWKS with one ES256 key made at start, and signs a
// 10-minute workload token for any sub and aud asked of /token. Development only: anyone
// who can reach it gets tokens.
import http from "node:http";
import { newKey, now, sign } from "../tests/e2e/idp.mjs";

const port = Number(process.env.PORT ?? 9000);
const issuer = `http://127.0.0.1:${port}`;
const key = await newKey("ES256", "local-idp");

const server = http.createServer(async (request, response) => {
  const url = new URL(request.url, issuer);
  response.setHeader("content-type", "application/json");
  if (url.pathname === "/.well-known/openid-configuration") {
    response.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
  } else if (url.pathname === "/jwks") {
    response.end(JSON.stringify({ keys: [key.publicJwk] }));
  } else if (url.pathname === "/token") {
    const sub = url.searchParams.get("sub") ?? "repo:acme/app:ref:refs/heads/main";
    const aud = url.searchParams.get("aud") ?? "https://sts.example.com";
    const lifetime = Number(url.searchParams.get("lifetime") ?? 600);
    const iat = now();
    const token = await sign(key, { iss: issuer, sub, aud, iat, exp: iat + lifetime, jti: crypto.randomUUID() });
    response.setHeader("content-type", "text/plain");
    response.end(token + "\n");
  } else {
    response.statusCode = 404;
    response.end(JSON.stringify({ error: "not_found", paths: ["/.well-known/openid-configuration", "/jwks", "/token?sub=…&aud=…&lifetime=…"] }));
  }
});
server.listen(port, "127.0.0.1", () => {
  console.log(`local identity provider: issuer ${issuer}`);
  console.log(`  token: curl -s '${issuer}/token?sub=repo:acme/app:ref:refs/heads/main&aud=https://sts.example.com'`);
});
