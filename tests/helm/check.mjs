// check.mjs: validates the objects `helm template` rendered (tests/helm/run.sh) against the Kubernetes schemas, offline.
//   node check.mjs --corral BIN --case NAME FILE    one rendered chart; prints "ok ..." / "FAIL ..." lines, exit 1 on a failure
//   node check.mjs --self-test                      the validator itself rejects broken objects (so a pass means something)
// Each object is checked twice: by the kubernetes-models validator of its apiVersion/kind (types, required fields,
// enums; prometheus-operator's models for the ServiceMonitor), and for unknown fields, walking the models' type
// declarations (the generated validators allow extra keys; the API server's strict field validation does not).
// Every ConfigMap key corral.yaml is written out and checked with `corral -t -c` (CORRAL_ADMIN_TOKEN set, as the
// pod's Secret sets it). Then the chart's own invariants per case (native sidecar, checksum, probes, ...).
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
let failures = 0, passes = 0;
const ok = (msg) => { passes++; console.log(`ok   ${msg}`); };
const fail = (msg) => { failures++; console.log(`FAIL ${msg}`); };
const check = (cond, msg) => (cond ? ok(msg) : fail(msg));

// ---- models: apiVersion/kind -> [module specifier, class name]
function modelPath(apiVersion, kind) {
  if (apiVersion === "monitoring.coreos.com/v1") return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}
async function validateModel(obj) {
  const spec = modelPath(obj.apiVersion, obj.kind);
  let mod;
  try { mod = await import(spec); } catch (e) { return `no schema for ${obj.apiVersion} ${obj.kind} (${e.code || e.message})`; }
  try { new mod[obj.kind](obj).validate(); return null; } catch (e) { return e.message.split("\n").slice(0, 6).join("; "); }
}

// ---- unknown fields: interfaces parsed from the models' .d.ts files
const ifaceCache = new Map();
function dtsFile(spec, fromFile) {
  if (spec.startsWith(".")) return path.resolve(path.dirname(fromFile), spec.replace(/\.js$/, "")) + ".d.ts";
  return require.resolve(spec).replace(/\.js$/, ".d.ts");
}
// returns {props: Map(name -> {file, type} | null)} for the first exported interface of file, or null when none
function loadIface(file) {
  if (ifaceCache.has(file)) return ifaceCache.get(file);
  let result = null;
  if (fs.existsSync(file)) {
    const src = fs.readFileSync(file, "utf8").replace(/\/\*\*[\s\S]*?\*\//g, "");
    const imports = new Map();
    for (const m of src.matchAll(/import \{ (\w+) \} from "([^"]+)";/g)) imports.set(m[1], m[2]);
    const body = src.match(/export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)\n\}/);
    if (body) {
      result = new Map();
      for (const m of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
        const ref = m[2].match(/^(?:Array<)?(I\w+)>?;$/);
        result.set(m[1], ref && imports.has(ref[1]) ? dtsFile(imports.get(ref[1]), file) : null);
      }
    }
  }
  ifaceCache.set(file, result);
  return result;
}
function unknownFields(data, file, where, out) {
  const props = loadIface(file);
  if (!props || data === null || typeof data !== "object") return out;
  if (Array.isArray(data)) { data.forEach((x, i) => unknownFields(x, file, `${where}[${i}]`, out)); return out; }
  for (const [k, v] of Object.entries(data)) {
    if (!props.has(k)) out.push(`${where}.${k}`);
    else if (props.get(k)) unknownFields(v, props.get(k), `${where}.${k}`, out);
  }
  return out;
}
function strictCheck(obj) {
  if (obj.apiVersion === "monitoring.coreos.com/v1") return []; // CRD models inline their types: kubernetes-models' validator only
  return unknownFields(obj, require.resolve(modelPath(obj.apiVersion, obj.kind)).replace(/\.js$/, ".d.ts"), obj.kind, []);
}

async function validateObject(obj, label) {
  const err = await validateModel(obj);
  const extra = err ? [] : strictCheck(obj);
  if (err) fail(`${label}: ${err}`);
  else if (extra.length) fail(`${label}: unknown fields ${extra.join(", ")}`);
  else ok(`${label}: valid`);
}

// ---- corral -t on every rendered corral.yaml
function corralCheck(corral, text, label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "corral-helm-"));
  const file = path.join(dir, "corral.yaml");
  fs.writeFileSync(file, text);
  try {
    execFileSync(corral, ["-t", "-c", file], { env: { ...process.env, CORRAL_ADMIN_TOKEN: "helm-test-token" }, stdio: "pipe", timeout: 10000 });
    ok(`${label}: corral -t accepts the rendered corral.yaml`);
  } catch (e) {
    fail(`${label}: corral -t rejects the rendered corral.yaml: ${(e.stderr || e.message).toString().trim()}`);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
}

const findAll = (objs, kind) => objs.filter((o) => o.kind === kind);
const podSpecs = (objs) => objs.filter((o) => o.kind === "Deployment").map((d) => d.spec.template);

// ---- the chart's invariants (the case names are run.sh's)
function invariants(name, objs) {
  const cms = findAll(objs, "ConfigMap").filter((c) => c.data && c.data["corral.yaml"]);
  check(cms.length === 1, `${name}: one ConfigMap with corral.yaml`);
  const configText = cms.length ? cms[0].data["corral.yaml"] : "";
  const config = configText ? parseAllDocuments(configText)[0].toJS() : {};
  for (const tpl of podSpecs(objs)) {
    const spec = tpl.spec, native = !name.startsWith("legacy");
    const corral = [...(spec.initContainers || []), ...spec.containers].find((c) => c.name === "corral");
    if (!corral) { fail(`${name}: a Deployment without the corral container`); continue; }
    if (native) check((spec.initContainers || []).includes(corral) && corral.restartPolicy === "Always", `${name}: corral is a native sidecar (init container, restartPolicy Always)`);
    else check(spec.containers.includes(corral) && !corral.restartPolicy && !spec.initContainers, `${name}: corral is a regular container (legacy mode)`);
    const sc = corral.securityContext || {};
    check(sc.runAsNonRoot === true && sc.readOnlyRootFilesystem === true && sc.allowPrivilegeEscalation === false &&
          JSON.stringify(sc.capabilities?.drop) === '["ALL"]', `${name}: corral runs non-root, read-only root, no capabilities`);
    check(corral.livenessProbe?.httpGet?.path === "/healthz" && corral.readinessProbe?.httpGet?.path === "/readyz" &&
          corral.livenessProbe.httpGet.port === "admin", `${name}: probes on /healthz and /readyz, admin port`);
    const adminPort = corral.ports.find((p) => p.name === "admin").containerPort;
    const httpPort = corral.ports.find((p) => p.name === "corral-http").containerPort;
    check(config.admin?.address === `0.0.0.0:${adminPort}` && config.listen?.[0]?.address === `0.0.0.0:${httpPort}`,
          `${name}: the container's ports are the ones corral.yaml listens on`);
    const stop = corral.lifecycle?.preStop?.exec?.command;
    const grace = spec.terminationGracePeriodSeconds;
    const drain = /^(\d+)s$/.exec(config.drain_timeout || "");
    check(drain !== null, `${name}: corral.yaml sets drain_timeout in seconds (${config.drain_timeout})`);
    check(Array.isArray(stop) && stop[0] === "/bin/sleep" && drain && grace >= Number(stop[1]) + Number(drain[1]),
          `${name}: preStop sleep ${stop?.[1]} s + drain_timeout ${config.drain_timeout} fit in terminationGracePeriodSeconds ${grace}`);
    const sum = crypto.createHash("sha256").update(configText.replace(/\n$/, "")).digest("hex");
    check(tpl.metadata.annotations?.["checksum/corral-config"] === sum, `${name}: checksum annotation is the sha256 of the rendered corral.yaml`);
    const tok = corral.env.find((e) => e.name === "CORRAL_ADMIN_TOKEN")?.valueFrom?.secretKeyRef;
    const secrets = findAll(objs, "Secret").map((s) => s.metadata.name);
    check(tok && config.admin?.token_env === "CORRAL_ADMIN_TOKEN" && (secrets.includes(tok.name) || name.startsWith("servicemonitor")),
          `${name}: the admin token comes from the Secret ${tok?.name}`);
    const vols = spec.volumes.map((v) => v.name);
    check(corral.volumeMounts.every((m) => vols.includes(m.name)) && spec.volumes.find((v) => v.name === "corral-config")?.configMap?.name === cms[0]?.metadata.name,
          `${name}: every corral mount has its volume; the config volume is the ConfigMap`);
    const label = tpl.metadata.labels?.["corral.sidecar/instance"];
    const admin = findAll(objs, "Service").find((s) => s.spec.selector?.["corral.sidecar/instance"]);
    check(label && admin && admin.spec.selector["corral.sidecar/instance"] === label, `${name}: the admin Service selects the pods`);
  }
  const svc = findAll(objs, "Service").filter((s) => s.spec.ports.some((p) => p.targetPort === "corral-http"));
  if (podSpecs(objs).length) check(svc.length === 1, `${name}: the traffic Service targets corral's port`);
  if (name === "defaults") check(podSpecs(objs).length === 0 && objs.some((o) => o.kind === "Secret"), `defaults: no workload, a token Secret`);
  if (name.startsWith("memcached")) {
    const servers = config.tier?.memcached?.servers || [];
    const sts = findAll(objs, "StatefulSet")[0];
    if (name === "memcached") check(sts && servers.length === sts.spec.replicas && servers.every((s, i) => s.startsWith(`${sts.metadata.name}-${i}.${sts.spec.serviceName}.`)) &&
                                    findAll(objs, "Service").some((s) => s.metadata.name === sts.spec.serviceName && s.spec.clusterIP === "None"),
                                    `memcached: tier.memcached.servers derived from the StatefulSet and its headless Service (${servers.length})`);
    else check(servers.length === 2 && !findAll(objs, "StatefulSet").length, `${name}: memcached.servers passed through`);
  }
  if (name.startsWith("servicemonitor") || name === "parent") {
    const sm = findAll(objs, "ServiceMonitor")[0];
    const admin = findAll(objs, "Service").find((s) => s.metadata.labels?.["corral.sidecar/admin"] === "true");
    check(sm && admin && Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => admin.metadata.labels[k] === v) &&
          sm.spec.endpoints[0].port === "admin" && sm.spec.endpoints[0].authorization?.credentials?.name,
          `${name}: the ServiceMonitor selects the admin Service and sends the token`);
  }
  if (name === "wrapped") {
    check(findAll(objs, "HorizontalPodAutoscaler").length === 1 && findAll(objs, "PodDisruptionBudget").length === 1 &&
          findAll(objs, "NetworkPolicy").length === 1 && objs.find((o) => o.kind === "Deployment").spec.replicas === undefined,
          "wrapped: HPA (no fixed replicas), PDB and NetworkPolicy rendered");
    check(config.routes?.length === 3 && config.routes[0].key?.query?.join() === "page,limit", "wrapped: routes copied into corral.yaml");
  }
  return configText;
}

async function runCase(corral, name, file) {
  const docs = parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => d.toJS()).filter(Boolean);
  check(docs.length > 0, `${name}: rendered ${docs.length} objects`);
  for (const obj of docs) await validateObject(obj, `${name}: ${obj.kind} ${obj.metadata?.name}`);
  for (const cm of findAll(docs, "ConfigMap")) if (cm.data?.["corral.yaml"]) corralCheck(corral, cm.data["corral.yaml"], `${name}: ConfigMap ${cm.metadata.name}`);
  invariants(name, docs);
}

async function selfTest() {
  const good = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "x" }, spec: { selector: { matchLabels: { a: "b" } },
    template: { metadata: { labels: { a: "b" } }, spec: { initContainers: [{ name: "c", image: "i", restartPolicy: "Always" }], containers: [{ name: "a", image: "i" }] } } } };
  check(!(await validateModel(good)) && strictCheck(good).length === 0, "self-test: a valid Deployment with a native sidecar passes");
  const badType = structuredClone(good); badType.spec.template.spec.containers[0].ports = [{ containerPort: "eighty" }];
  check(!!(await validateModel(badType)), "self-test: a string containerPort is rejected");
  const missing = structuredClone(good); delete missing.spec.selector;
  check(!!(await validateModel(missing)), "self-test: a Deployment without selector is rejected");
  const misplaced = structuredClone(good); misplaced.spec.template.spec.restartPolicy2 = "x"; misplaced.spec.template.spec.containers[0].securityContext = { runAsNonroot: true };
  check(strictCheck(misplaced).sort().join() === "Deployment.spec.template.spec.containers[0].securityContext.runAsNonroot,Deployment.spec.template.spec.restartPolicy2",
        "self-test: unknown fields are found, nested and in lists");
  check(!!(await validateModel({ apiVersion: "monitoring.coreos.com/v1", kind: "ServiceMonitor", metadata: { name: "m" }, spec: { endpoints: "x" } })),
        "self-test: a ServiceMonitor with a bad endpoints list is rejected");
}

// values.schema.json may allow only keys corral knows (sidecar/conf/config_schema.c's tables), so the chart's schema
// cannot accept what `corral -t` then refuses; keys corral has and the schema lacks are listed, not failed.
function schemaDrift(schemaFile, cFile) {
  const c = fs.readFileSync(cFile, "utf8"), tables = {};
  for (const m of c.matchAll(/static const char \*const (\w+)\[\] = \{([^}]*)\}/g)) tables[m[1]] = [...m[2].matchAll(/"([^"]+)"/g)].map((x) => x[1]);
  const schema = JSON.parse(fs.readFileSync(schemaFile, "utf8"));
  // an object's keys: its properties, or those of the one oneOf branch that has them (coalesce: true | {...});
  // a section the schema lacks altogether has none (each of corral's keys is then listed as lacking)
  const props = (o) => Object.keys(o?.properties || o?.oneOf?.find((x) => x.properties)?.properties || {});
  const cfg = schema.properties.config.properties, route = schema.$defs.route.properties, up = cfg.upstream.properties;
  const pairs = [
    // drain_timeout: the chart writes it from drain.drainSeconds (_config.tpl refuses config.drain_timeout)
    ["config", schema.properties.config, "top_keys", ["listen", "admin", "routes", "drain_timeout"]], ["config.upstream", cfg.upstream, "upstream_keys", ["url"]],
    ["config.upstream.health", up.health, "health_keys"], ["config.upstream.max_concurrency", up.max_concurrency, "concurrency_keys"],
    ["config.upstream.breaker", up.breaker, "breaker_keys"], ["config.log", cfg.log, "log_keys"],
    ["config.cache", cfg.cache, "cache_keys"], ["config.limits", cfg.limits, "limits_keys"], ["config.tier", cfg.tier, "tier_keys"],
    ["config.tier.memcached", cfg.tier.properties.memcached, "memcached_keys", ["servers"]], ["config.tier.lease", cfg.tier.properties.lease, "lease_keys"],
    ["config.tier.invalidation", cfg.tier.properties.invalidation, "tier_inval_keys"], ["routes[]", schema.$defs.route, "route_keys"],
    ["routes[].match", route.match, "match_keys"], ["routes[].key", route.key, "key_keys"], ["routes[].coalesce", route.coalesce, "coalesce_keys"],
    ["routes[].compress", route.compress, "compress_keys"], ["routes[].rate_limit", route.rate_limit, "ratelimit_keys"],
  ];
  for (const [where, sub, table, chartOwned = []] of pairs) {
    const have = props(sub), known = tables[table];
    if (!known) { fail(`schema drift: no table ${table} in ${cFile}`); continue; }
    const extra = have.filter((k) => !known.includes(k));
    check(extra.length === 0, `schema drift: ${where} allows only keys corral knows${extra.length ? ` (not in corral: ${extra.join(", ")})` : ""}`);
    const lacking = known.filter((k) => !have.includes(k) && !chartOwned.includes(k));
    if (lacking.length) console.log(`info ${where}: corral has ${lacking.join(", ")}, values.schema.json does not (yet)`);
  }
}

const args = process.argv.slice(2);
if (args[0] === "--self-test") await selfTest();
else if (args[0] === "--schema-drift") schemaDrift(args[1], args[2]);
else {
  const corral = args[args.indexOf("--corral") + 1], name = args[args.indexOf("--case") + 1], file = args[args.length - 1];
  await runCase(corral, name, file);
}
console.log(`check: ${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
