// End-to-end tests of `custody serve`: the real binary on port 0 in a temporary directory,
// driven over HTTP with our own client (src/http/client.h) and raw sockets.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/jose.h"
#include "http/client.h"
#include "http/testing/self_signed.h"
#include "ledger/checkpoint.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/proof.h"
#include "ledger/receipt.h"
#include "ledger/tiles.h"
#include "serve_util.h"
#include "store/stores.h"
#include "subprocess.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using http::BlockingHttpClient;
using http::ClientRequest;
using http::ClientResponse;
using testing::CreateToken;
using testing::Get;
using testing::PostForm;
using testing::PostJson;
using testing::RunCommand;
using testing::ServeProcess;
using testing::Subprocess;
using testing::TempDir;

std::string Event(uint64_t n, const std::string& tag = "e2e") {
  return "{\"kind\":\"" + tag + "\",\"n\":" + std::to_string(n) + "}";
}

// Checks the one error shape and that its request_id is the X-Request-ID header.
void ExpectErrorShape(const ClientResponse& r, const std::string& code) {
  EXPECT_EQ(r.headers.Get("content-type").value_or(""), "application/json");
  auto obj = json::parse(r.body).as_object();
  auto err = obj.at("error").as_object();
  EXPECT_EQ(err.at("code").as_string(), code) << r.body;
  EXPECT_FALSE(err.at("message").as_string().empty());
  std::string rid = err.at("request_id").as_string().c_str();
  EXPECT_EQ(rid, std::string(r.headers.Get("x-request-id").value_or("")));
  EXPECT_FALSE(rid.empty());
}

// Verifies a receipt from the server against the verifier key and the event's canonical bytes.
void ExpectReceiptVerifies(const std::string& vkey, const std::string& receipt,
                           const std::string& event) {
  auto verifier = ledger::NoteVerifier::FromVerifierKey(vkey);
  ASSERT_TRUE(verifier.ok());
  auto canonical = CanonicalizeJson(event);
  ASSERT_TRUE(canonical.ok());
  Status st = ledger::VerifyReceipt(*verifier, receipt, AsBytes(*canonical));
  EXPECT_TRUE(st.ok()) << st.ToString();
}

int LedgerVerify(const fs::path& data, std::string* out) {
  return RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", (data / "ledger.db").string(),
                     "--key", (data / "ledger.key").string()},
                    out);
}

TEST(Serve, QuickstartFromAnEmptyDirectory) {
  // The server inherits a permissive umask, so a file it created group- or world-readable
  // would show below.
  mode_t saved_umask = ::umask(022);
  fs::path dir = TempDir("quickstart");
  fs::path data = dir / "custody-data";
  std::string token, vkey;
  {
    ServeProcess s(data, {"--log-level", "warn"});
    ASSERT_TRUE(s.started());
    token = s.token();
    vkey = s.vkey();
    EXPECT_TRUE(token.starts_with("cst_"));
    EXPECT_TRUE(s.url().starts_with("http://127.0.0.1:"));
    struct stat st;
    ASSERT_EQ(::stat(data.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_TRUE(fs::exists(data / "ledger.key"));
    EXPECT_TRUE(fs::exists(data / "custody.db"));
    // The token is stored hashed: its text appears in no file of the data directory. Every
    // file there is the service user's alone, whatever this test's umask.
    for (const auto& f : fs::directory_iterator(data)) {
      struct stat fst;
      ASSERT_EQ(::stat(f.path().c_str(), &fst), 0);
      EXPECT_EQ(fst.st_mode & 077, 0u)
          << f.path() << " has mode " << std::oct << (fst.st_mode & 0777);
      std::ifstream in(f.path(), std::ios::binary);
      std::string content((std::istreambuf_iterator<char>(in)), {});
      EXPECT_EQ(content.find(token.substr(21)), std::string::npos) << f.path();
    }
    auto c = s.Client();
    auto r = c.Send(Get("/healthz"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
    r = c.Send(Get("/readyz"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << r->body;
    r = c.Send(Get("/v1/ledger/key"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->body, vkey + "\n");
    r = c.Send(Get("/v1/ledger/checkpoint"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 404);  // empty ledger: no checkpoint yet
    ExpectErrorShape(*r, "not_found");
    r = c.Send(PostJson(Event(1), token));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 201) << r->body;
    r = c.Send(Get("/v1/ledger/checkpoint"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
    auto verifier = ledger::NoteVerifier::FromVerifierKey(vkey);
    ASSERT_TRUE(verifier.ok());
    auto cp = ledger::OpenCheckpoint(*verifier, r->body);
    ASSERT_TRUE(cp.ok()) << cp.status().ToString();
    EXPECT_EQ(cp->size, 1u);
    EXPECT_EQ(s.Stop(), 0);
  }
  // A second quickstart reuses everything and prints no new token.
  ServeProcess again(data, {"--log-level", "warn"});
  ASSERT_TRUE(again.started());
  EXPECT_TRUE(again.token().empty());
  EXPECT_EQ(again.vkey(), vkey);
  auto r = again.Client().Send(PostJson(Event(2), token));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(json::parse(r->body).as_object().at("index").as_int64(), 1);
  EXPECT_EQ(again.Stop(SIGINT), 0);  // Ctrl-C stops it gracefully too
  fs::remove_all(dir);
  ::umask(saved_umask);
}

// The `custody ledger` commands on a server's data directory (#16 defect 7): the server keeps
// DIR/ledger.db and DIR/ledger.key, and `--db DIR/ledger.db` alone finds that key, for reading
// and for appending. A wrong key or no key is a clear error, and no key is made up.
TEST(Serve, LedgerCommandsOnAServersDataDirectoryUseItsKey) {
  fs::path dir = TempDir("ledger-cli");
  fs::path data = dir / "data";
  std::string vkey;
  {
    ServeProcess s(data, {"--log-level", "warn"});
    ASSERT_TRUE(s.started());
    vkey = s.vkey();
    auto c = s.Client();
    for (int i = 0; i < 3; ++i) {
      auto r = c.Send(PostJson(Event(i, "cli"), s.token()));
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->status, 201) << r->body;
    }
    // Beside the running server, which keeps the ledger open.
    std::string out;
    EXPECT_EQ(
        RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", (data / "ledger.db").string()},
                   &out),
        0)
        << out;
    EXPECT_NE(out.find("\"leaves\":3"), std::string::npos) << out;
    ASSERT_EQ(s.Stop(), 0);
  }
  const std::string db = (data / "ledger.db").string();
  std::string out;
  ASSERT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", db}, &out), 0) << out;
  EXPECT_NE(out.find("\"ok\":true,\"leaves\":3"), std::string::npos) << out;
  // The verifier key the CLI derives is the server's.
  ASSERT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "key", "--db", db}, &out), 0) << out;
  EXPECT_EQ(out, vkey + "\n");

  // An append signs with the server's key: its receipt verifies under the server's verifier
  // key, and the whole ledger still verifies.
  {
    Subprocess append({CUSTODY_BINARY, "ledger", "append", "--db", db});
    std::string event = Event(3, "cli");
    ASSERT_TRUE(append.Write(event + "\n"));
    append.CloseStdin();
    std::string line;
    ASSERT_TRUE(append.ReadLine(&line));
    EXPECT_EQ(WEXITSTATUS(append.Wait()), 0);
    auto obj = json::parse(line).as_object();
    EXPECT_EQ(obj.at("index").as_int64(), 3) << line;
    ExpectReceiptVerifies(vkey, obj.at("receipt").as_string().c_str(), event);
  }
  EXPECT_FALSE(fs::exists(db + ".key"));  // no second key was made
  ASSERT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", db, "--vkey", vkey}, &out), 0)
      << out;
  EXPECT_NE(out.find("\"leaves\":4"), std::string::npos) << out;

  // A wrong key fails, saying so.
  fs::path other = dir / "other";
  fs::create_directories(other);
  ASSERT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "key", "--db", (other / "o.db").string()}, &out),
            0)
      << out;
  EXPECT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", db, "--key",
                        (other / "o.db.key").string()},
                       &out),
            1);
  EXPECT_NE(out.find("verification FAILED"), std::string::npos) << out;

  // Without the key, verify says where it looked and creates nothing.
  fs::rename(data / "ledger.key", dir / "moved.key");
  EXPECT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", db}, &out), 1);
  EXPECT_NE(
      out.find("no key to verify with at " + db + ".key or " + (data / "ledger.key").string()),
      std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(data / "ledger.key"));
  EXPECT_FALSE(fs::exists(db + ".key"));
  EXPECT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "checkpoint", "--db", db}, &out), 1);
  EXPECT_NE(out.find("no signing key at"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(db + ".key"));
}

TEST(Serve, WithoutQuickstartAMissingDataDirIsAClearError) {
  fs::path dir = TempDir("noquick");
  std::string out;
  int rc = RunCommand({CUSTODY_BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir",
                       (dir / "missing").string()},
                      &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("--quickstart"), std::string::npos) << out;
  fs::remove_all(dir);
}

TEST(Serve, BadConfigFileNamesFileAndLine) {
  fs::path dir = TempDir("badcfg");
  std::ofstream(dir / "custody.toml") << "listen = \"127.0.0.1:0\"\n[ledger]\nbatch_sise = 10\n";
  std::string out;
  int rc = RunCommand({CUSTODY_BINARY, "serve", "--config", (dir / "custody.toml").string(),
                       "--data-dir", (dir / "d").string(), "--quickstart"},
                      &out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("custody.toml:3:1"), std::string::npos) << out;
  EXPECT_NE(out.find("ledger.batch_sise"), std::string::npos) << out;
  fs::remove_all(dir);
}

TEST(Serve, AuthenticationNoneWrongRevokedAndWrongRole) {
  fs::path dir = TempDir("auth");
  fs::path data = dir / "data";
  ServeProcess s(data, {"--log-level", "warn"});
  ASSERT_TRUE(s.started());
  auto c = s.Client();
  // None.
  auto r = c.Send(PostJson(Event(1), ""));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  EXPECT_TRUE(
      r->headers.Get("www-authenticate").value_or("").starts_with("Bearer realm=\"custody\""));
  ExpectErrorShape(*r, "unauthenticated");
  // Wrong (well-formed, unknown; and garbage).
  std::string wrong = s.token();
  wrong[30] = wrong[30] == 'a' ? 'b' : 'a';
  r = c.Send(PostJson(Event(1), wrong));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  r = c.Send(PostJson(Event(1), "not-a-token"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  ExpectErrorShape(*r, "unauthenticated");
  // Wrong role: a reader may read but not append.
  std::string reader = CreateToken(data, "reader", nullptr);
  r = c.Send(PostJson(Event(1), reader));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403);
  ExpectErrorShape(*r, "permission_denied");
  // A token created while the server runs works at once; revoked, it gets 401.
  std::string id;
  std::string admin = CreateToken(data, "admin", &id);
  r = c.Send(PostJson(Event(2), admin));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 201) << r->body;
  std::string out;
  ASSERT_EQ(
      RunCommand({CUSTODY_BINARY, "admin", "token", "revoke", id, "--data-dir", data.string()},
                 &out),
      0)
      << out;
  r = c.Send(PostJson(Event(3), admin));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(r->body.find("revoked"), std::string::npos);
  ASSERT_EQ(
      RunCommand({CUSTODY_BINARY, "admin", "token", "list", "--data-dir", data.string()}, &out), 0);
  EXPECT_NE(out.find("\"id\":\"" + id + "\""), std::string::npos);
  EXPECT_EQ(out.find("cst_"), std::string::npos);  // list never shows tokens
  // The quickstart token still works; reads need no token by default.
  r = c.Send(PostJson(Event(4), s.token()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 201);
  r = c.Send(Get("/v1/ledger/entries/0"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(s.Stop(), 0);
  fs::remove_all(dir);
}

TEST(Serve, ProtectedReadsNeedAReaderOrAdminToken) {
  fs::path dir = TempDir("protect");
  fs::path data = dir / "data";
  ServeProcess s(data, {"--log-level", "warn", "--set", "admin.protect_reads=true"});
  ASSERT_TRUE(s.started());
  std::string reader = CreateToken(data, "reader", nullptr);
  auto c = s.Client();
  auto r = c.Send(Get("/v1/ledger/key"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  ClientRequest g = Get("/v1/ledger/key");
  g.headers.Set("authorization", "Bearer " + reader);
  r = c.Send(g);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  r = c.Send(Get("/healthz"));  // probes stay open
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(s.Stop(), 0);
  fs::remove_all(dir);
}

TEST(Serve, BadInputGetsClear4xxAndOthersAreStillServed) {
  fs::path dir = TempDir("badinput");
  ServeProcess s(dir / "data", {"--log-level", "warn", "--set", "limits.max_body_bytes=4096",
                                "--set", "limits.header_timeout_ms=500"});
  ASSERT_TRUE(s.started());
  auto c = s.Client();
  // Slow-loris clients: half a header each, then nothing.
  boost::asio::io_context io;
  std::vector<boost::asio::ip::tcp::socket> slow;
  for (int i = 0; i < 16; ++i) {
    slow.emplace_back(io);
    slow.back().connect({boost::asio::ip::make_address("127.0.0.1"), s.port()});
    boost::asio::write(
        slow.back(),
        boost::asio::buffer(std::string("POST /v1/ledger/entries HTTP/1.1\r\nHost: x\r\n")));
  }
  ClientRequest withid = PostJson("{\"a\":", s.token());
  withid.headers.Set("x-request-id", "my-request-1");
  auto r = c.Send(withid);  // malformed JSON
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  ExpectErrorShape(*r, "invalid_argument");
  EXPECT_EQ(r->headers.Get("x-request-id").value_or(""), "my-request-1");
  r = c.Send(PostJson("{\"a\":1,\"a\":2}", s.token()));  // duplicate names are not I-JSON
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  r = c.Send(PostJson("[{\"a\":1},2]", s.token()));  // every event must be an object
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("event 1"), std::string::npos);
  r = c.Send(PostJson("[]", s.token()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  ClientRequest text = PostJson(Event(1), s.token());
  text.headers.Set("content-type", "text/plain");
  r = c.Send(text);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 415);
  ExpectErrorShape(*r, "invalid_argument");
  r = c.Send(PostJson("{\"pad\":\"" + std::string(8000, 'x') + "\"}", s.token()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  ExpectErrorShape(*r, "invalid_argument");
  r = c.Send(Get("/v1/nope"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  ExpectErrorShape(*r, "not_found");
  r = c.Send(Get("/v1/ledger/entries"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 405);
  r = c.Send(Get("/v1/ledger/entries/abc"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  r = c.Send(Get("/v1/ledger/proof/inclusion?index=01"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  // Nothing bad was appended; good requests still work while the slow clients hang on.
  r = c.Send(PostJson(Event(1), s.token()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(json::parse(r->body).as_object().at("index").as_int64(), 0);
  // Then each slow client is answered 408 and dropped.
  for (auto& sock : slow) {
    std::string data;
    char buf[1024];
    boost::system::error_code ec;
    for (;;) {
      size_t n = sock.read_some(boost::asio::buffer(buf), ec);
      if (ec) break;
      data.append(buf, n);
    }
    EXPECT_TRUE(data.starts_with("HTTP/1.1 408")) << data;
  }
  r = c.Send(Get("/healthz"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(s.Stop(), 0);
  fs::remove_all(dir);
}

// Appends 600 events (in arrays), then checks proofs, entries and the tlog tiles against the
// signed checkpoint: the root recomputed from the served tiles must equal the checkpoint's.
TEST(Serve, LedgerRoutesAndTilesAgreeWithProofs) {
  fs::path dir = TempDir("tiles");
  ServeProcess s(dir / "data", {"--log-level", "warn"});
  ASSERT_TRUE(s.started());
  auto c = s.Client();
  std::vector<std::string> events;
  for (int batch = 0; batch < 6; ++batch) {
    std::string body = "[";
    for (int i = 0; i < 100; ++i) {
      events.push_back(Event(events.size(), "tiles"));
      body += (i ? "," : "") + events.back();
    }
    auto r = c.Send(PostJson(body + "]", s.token()));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 201) << r->body;
    auto entries = json::parse(r->body).as_object().at("entries").as_array();
    ASSERT_EQ(entries.size(), 100u);
    for (int i = 0; i < 100; ++i) {
      auto e = entries[i].as_object();
      EXPECT_EQ(static_cast<size_t>(e.at("index").as_int64()), batch * 100u + i);
      ExpectReceiptVerifies(s.vkey(), e.at("receipt").as_string().c_str(), events[batch * 100 + i]);
    }
  }
  auto verifier = ledger::NoteVerifier::FromVerifierKey(s.vkey());
  ASSERT_TRUE(verifier.ok());
  auto r = c.Send(Get("/tlog/checkpoint"));
  ASSERT_TRUE(r.ok());
  auto cp = ledger::OpenCheckpoint(*verifier, r->body);
  ASSERT_TRUE(cp.ok());
  ASSERT_EQ(cp->size, 600u);

  // Level-0 tiles: two full, one partial of 88.
  std::vector<ledger::Hash> leaves;
  for (uint64_t n = 0; n < 3; ++n) {
    uint16_t w = ledger::TileWidthAt(0, n, 600);
    auto t = c.Send(Get("/tlog/" + ledger::TilePath(0, n, w)));
    ASSERT_TRUE(t.ok());
    ASSERT_EQ(t->status, 200) << ledger::TilePath(0, n, w);
    EXPECT_EQ(t->headers.Get("cache-control").value_or(""),
              w == 256 ? "public, max-age=31536000, immutable" : "no-cache");
    auto hashes = ledger::DecodeTile(t->body);
    ASSERT_TRUE(hashes.ok());
    ASSERT_EQ(hashes->size(), w);
    leaves.insert(leaves.end(), hashes->begin(), hashes->end());
    // The entry bundle holds the events whose leaf hashes the tile lists.
    auto b = c.Send(Get("/tlog/" + ledger::EntryBundlePath(n, w)));
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(b->status, 200);
    auto entries = ledger::DecodeEntryBundle(b->body);
    ASSERT_TRUE(entries.ok());
    ASSERT_EQ(entries->size(), w);
    for (size_t i = 0; i < w; ++i) {
      EXPECT_EQ(ledger::HashLeaf((*entries)[i]), (*hashes)[i]);
      EXPECT_EQ((*entries)[i], *CanonicalizeJson(events[n * 256 + i]));
    }
  }
  EXPECT_EQ(ledger::RootFromLeafHashes(leaves), cp->root);
  // Level 1: one partial tile whose two entries are the roots of the full level-0 tiles.
  auto l1 = c.Send(Get("/tlog/" + ledger::TilePath(1, 0, 2)));
  ASSERT_TRUE(l1.ok());
  ASSERT_EQ(l1->status, 200);
  auto l1h = ledger::DecodeTile(l1->body);
  ASSERT_TRUE(l1h.ok());
  ASSERT_EQ(l1h->size(), 2u);
  EXPECT_EQ((*l1h)[0], ledger::RootFromLeafHashes(std::span(leaves.data(), 256)));
  EXPECT_EQ((*l1h)[1], ledger::RootFromLeafHashes(std::span(leaves.data() + 256, 256)));
  // A narrower partial tile is a prefix; tiles beyond the tree are 404.
  auto p10 = c.Send(Get("/tlog/" + ledger::TilePath(0, 2, 10)));
  ASSERT_TRUE(p10.ok());
  ASSERT_EQ(p10->status, 200);
  EXPECT_EQ(p10->body.size(), 320u);
  for (std::string bad :
       {ledger::TilePath(0, 2, 89), ledger::TilePath(0, 2, 256), ledger::TilePath(0, 3, 1),
        ledger::TilePath(1, 0, 256), ledger::TilePath(2, 0, 1), std::string("tile/0/0001"),
        ledger::EntryBundlePath(3, 1)}) {
    auto t = c.Send(Get("/tlog/" + bad));
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->status, 404) << bad;
  }

  // Inclusion proof for each of a few leaves leads to the checkpoint root.
  for (uint64_t i : {0ull, 255ull, 256ull, 599ull}) {
    auto p = c.Send(Get("/v1/ledger/proof/inclusion?index=" + std::to_string(i) + "&size=600"));
    ASSERT_TRUE(p.ok());
    ASSERT_EQ(p->status, 200) << p->body;
    auto obj = json::parse(p->body).as_object();
    std::vector<ledger::Hash> proof;
    for (auto& h : obj.at("hashes").as_array()) {
      auto bytes = Base64Decode(h.as_string().c_str());
      ASSERT_TRUE(bytes.ok());
      ledger::Hash hh;
      std::copy(bytes->begin(), bytes->end(), hh.begin());
      proof.push_back(hh);
    }
    Status st = ledger::VerifyInclusion(i, 600, leaves[i], proof, cp->root);
    EXPECT_TRUE(st.ok()) << st.ToString();
    auto e = c.Send(Get("/v1/ledger/entries/" + std::to_string(i)));
    ASSERT_TRUE(e.ok());
    ASSERT_EQ(e->status, 200);
    auto eo = json::parse(e->body).as_object();
    EXPECT_EQ(json::serialize(eo.at("event")), *CanonicalizeJson(events[i]));
    ExpectReceiptVerifies(s.vkey(), eo.at("receipt").as_string().c_str(), events[i]);
  }
  // Custody's own kinds are refused: an append cannot pass for a decision or a revocation, and a
  // refused array appends nothing.
  for (const char* body :
       {R"({"event_id":"e-0","kind":"action.decision","actor":{"agent":"planner"}})",
        R"([{"kind":"app.x"},{"kind":"revocation","sid":"s-1"}])"}) {
    auto r = c.Send(PostJson(body, s.token()));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_NE(r->body.find("is recorded by Custody itself"), std::string::npos) << r->body;
  }
  // The index columns are filled from the event.
  {
    auto r = c.Send(PostJson(
        R"({"event_id":"e-1","kind":"app.decision","actor":{"agent":"planner","session":"s-9"}})",
        s.token()));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 201);
    auto store = store::OpenLedgerFile((dir / "data" / "ledger.db").string(),
                                       {.read_only = true, .create_if_missing = false});
    ASSERT_TRUE(store.ok());
    auto leaf = (*store)->GetLeaf(600);
    ASSERT_TRUE(leaf.ok());
    EXPECT_EQ(leaf->columns.event_id, "e-1");
    EXPECT_EQ(leaf->columns.kind, "app.decision");
    EXPECT_EQ(leaf->columns.agent, "planner");
    EXPECT_EQ(leaf->columns.session, "s-9");
    EXPECT_EQ(leaf->columns.time, "");
  }
  auto e404 = c.Send(Get("/v1/ledger/entries/601"));
  ASSERT_TRUE(e404.ok());
  EXPECT_EQ(e404->status, 404);
  // Consistency from 100 to 600 verifies against the roots of both sizes.
  auto cons = c.Send(Get("/v1/ledger/proof/consistency?from=100&to=600"));
  ASSERT_TRUE(cons.ok());
  ASSERT_EQ(cons->status, 200);
  std::vector<ledger::Hash> cproof;
  json::value cons_json = json::parse(cons->body);
  for (auto& h : cons_json.as_object().at("hashes").as_array()) {
    auto bytes = Base64Decode(h.as_string().c_str());
    ledger::Hash hh;
    std::copy(bytes->begin(), bytes->end(), hh.begin());
    cproof.push_back(hh);
  }
  Status cs = ledger::VerifyConsistency(
      100, 600, cproof, ledger::RootFromLeafHashes(std::span(leaves.data(), 100)), cp->root);
  EXPECT_TRUE(cs.ok()) << cs.ToString();
  EXPECT_EQ(s.Stop(), 0);
  std::string out;
  EXPECT_EQ(LedgerVerify(dir / "data", &out), 0) << out;
  fs::remove_all(dir);
}

TEST(Serve, MetricsAndAccessLogsWithoutSecrets) {
  fs::path dir = TempDir("metrics");
  ServeProcess s(dir / "data", {"--log-level", "info"}, true, /*merge_stderr=*/true);
  ASSERT_TRUE(s.started());
  auto c = s.Client();
  for (int i = 0; i < 3; ++i) {
    auto r = c.Send(PostJson(Event(i), s.token()));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 201);
  }
  auto r = c.Send(Get("/v1/ledger/entries/2"));
  ASSERT_TRUE(r.ok());
  r = c.Send(PostJson(Event(9), "cst_0000000000000000_" + std::string(43, 'Z')));
  ASSERT_TRUE(r.ok());
  r = c.Send(Get("/metrics"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200);
  const std::string& m = r->body;
  EXPECT_NE(m.find("custody_http_requests_total{method=\"POST\",route=\"/v1/ledger/"
                   "entries\",status=\"201\"} 3"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("route=\"/v1/ledger/entries/{index}\""), std::string::npos);
  EXPECT_NE(m.find("custody_ledger_size 3"), std::string::npos);
  EXPECT_NE(m.find("custody_ledger_batch_size_count"), std::string::npos);
  EXPECT_NE(m.find("custody_ledger_commit_duration_seconds_bucket"), std::string::npos);
  // Each metric family once: Prometheus refuses an exposition that repeats one.
  std::set<std::string> families;
  for (size_t at = m.find("# TYPE "); at != std::string::npos; at = m.find("# TYPE ", at + 1)) {
    std::string name = m.substr(at + 7, m.find(' ', at + 7) - (at + 7));
    EXPECT_TRUE(families.insert(name).second) << name << " is exposed twice";
  }
  EXPECT_TRUE(families.count("custody_console_sessions")) << m;
  EXPECT_NE(m.find("custody_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/"
                   "ledger/entries\",le=\"+Inf\"} 4"),
            std::string::npos);
  EXPECT_EQ(s.Stop(), 0);
  auto lines = s.DrainOutput();
  int request_lines = 0;
  bool saw_key = false;
  for (const std::string& line : lines) {
    // The quickstart token's one stdout line is the only place a token may appear.
    if (line.find("\"event\":\"admin_token\"") != std::string::npos) continue;
    EXPECT_EQ(line.find("cst_"), std::string::npos) << "a token in the logs: " << line;
    EXPECT_EQ(line.find("Bearer"), std::string::npos) << line;
    if (line.find("\"ledger_verifier_key\":\"" + s.vkey() + "\"") != std::string::npos) {
      saw_key = true;
    }
    if (line.find("\"msg\":\"request\"") == std::string::npos) continue;
    ++request_lines;
    auto obj = json::parse(line).as_object();
    EXPECT_TRUE(obj.contains("method"));
    EXPECT_TRUE(obj.contains("route"));
    EXPECT_TRUE(obj.contains("status"));
    EXPECT_TRUE(obj.contains("latency_ms"));
    EXPECT_TRUE(obj.contains("request_id"));
    EXPECT_EQ(line.find("/v1/ledger/entries/2"), std::string::npos);  // patterns, not paths
  }
  EXPECT_TRUE(saw_key);  // the verifier key is logged at start-up
  EXPECT_EQ(request_lines, 6);
  fs::remove_all(dir);
}

// Many keep-alive clients append while SIGTERM arrives: every acknowledged append must be in the
// ledger with the bytes sent, the process must exit 0, and the file must verify.
TEST(Serve, GracefulShutdownLosesNoAcknowledgedAppend) {
  fs::path dir = TempDir("shutdown");
  fs::path data = dir / "data";
  auto s = std::make_unique<ServeProcess>(data, std::vector<std::string>{"--log-level", "warn"});
  ASSERT_TRUE(s->started());
  constexpr int kClients = 8;
  std::mutex mu;
  std::vector<std::pair<uint64_t, std::string>> acked;  // guarded by mu
  std::atomic<int> total{0};
  std::atomic<bool> stop{false};
  std::condition_variable progress;
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      auto c = s->Client();
      for (int i = 0; i < 5000 && !stop; ++i) {
        std::string ev = Event(t * 100000 + i, "shutdown");
        auto r = c.Send(PostJson(ev, s->token()));
        if (!r.ok()) break;  // the server went away: not acknowledged
        if (r->status != 201) {
          ADD_FAILURE() << r->status << " " << r->body;
          break;
        }
        auto obj = json::parse(r->body).as_object();
        ExpectReceiptVerifies(s->vkey(), obj.at("receipt").as_string().c_str(), ev);
        {
          std::lock_guard<std::mutex> lock(mu);
          acked.emplace_back(obj.at("index").as_int64(), ev);
          ++total;
        }
        progress.notify_all();
      }
    });
  }
  // Signal once appends are flowing (bounded wait).
  {
    std::unique_lock<std::mutex> lock(mu);
    progress.wait_for(lock, std::chrono::seconds(60), [&] { return total >= 200; });
  }
  EXPECT_GE(total.load(), 200);
  int status = s->Stop();
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::string out;
  EXPECT_EQ(LedgerVerify(data, &out), 0) << out;
  auto store = store::OpenLedgerFile((data / "ledger.db").string(),
                                     {.read_only = true, .create_if_missing = false});
  ASSERT_TRUE(store.ok());
  for (const auto& [index, ev] : acked) {
    auto leaf = (*store)->GetLeaf(index);
    ASSERT_TRUE(leaf.ok()) << index;
    EXPECT_EQ(leaf->data, *CanonicalizeJson(ev));
  }
  fs::remove_all(dir);
}

// Bounded load: 32 keep-alive connections x 40 appends (some single, some arrays of 5).
TEST(Serve, LoadManyKeepAliveConnections) {
  fs::path dir = TempDir("load");
  fs::path data = dir / "data";
  ServeProcess s(data, {"--log-level", "warn"});
  ASSERT_TRUE(s.started());
  constexpr int kConns = 32, kRequests = 40;
  std::atomic<int> answered{0}, events{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kConns; ++t) {
    threads.emplace_back([&, t] {
      http::ClientOptions o;
      o.timeout = std::chrono::seconds(60);
      auto c = s.Client(o);
      for (int i = 0; i < kRequests; ++i) {
        bool array = i % 4 == 0;
        std::vector<std::string> evs;
        for (int k = 0; k < (array ? 5 : 1); ++k)
          evs.push_back(Event(t * 1000 + i * 10 + k, "load"));
        std::string body = evs[0];
        if (array) {
          body = "[";
          for (size_t k = 0; k < evs.size(); ++k) body += (k ? "," : "") + evs[k];
          body += "]";
        }
        auto r = c.Send(PostJson(body, s.token()));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        ASSERT_EQ(r->status, 201) << r->body;
        ++answered;
        auto obj = json::parse(r->body).as_object();
        if (!array) {
          ExpectReceiptVerifies(s.vkey(), obj.at("receipt").as_string().c_str(), evs[0]);
        } else {
          auto arr = obj.at("entries").as_array();
          ASSERT_EQ(arr.size(), evs.size());
          for (size_t k = 0; k < evs.size(); ++k) {
            ExpectReceiptVerifies(s.vkey(), arr[k].as_object().at("receipt").as_string().c_str(),
                                  evs[k]);
          }
        }
        events += static_cast<int>(evs.size());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(answered.load(), kConns * kRequests);
  auto cp = s.Client().Send(Get("/v1/ledger/checkpoint"));
  ASSERT_TRUE(cp.ok());
  auto verifier = ledger::NoteVerifier::FromVerifierKey(s.vkey());
  auto parsed = ledger::OpenCheckpoint(*verifier, cp->body);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->size, static_cast<uint64_t>(events.load()));
  EXPECT_EQ(s.Stop(), 0);
  std::string out;
  EXPECT_EQ(LedgerVerify(data, &out), 0) << out;
  fs::remove_all(dir);
}

void MakeSelfSigned(const std::string& cert_path, const std::string& key_path) {
  ASSERT_TRUE(
      http::testing::WriteSelfSignedCertificate(cert_path, key_path, "127.0.0.1", "IP:127.0.0.1"));
}

TEST(Serve, Tls) {
  fs::path dir = TempDir("tls");
  std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  MakeSelfSigned(cert, key);
  ServeProcess s(dir / "data", {"--log-level", "warn", "--tls-cert", cert, "--tls-key", key});
  ASSERT_TRUE(s.started());
  EXPECT_TRUE(s.url().starts_with("https://"));
  http::ClientOptions o;
  o.tls = true;
  o.ca_file = cert;
  auto c = s.Client(o);
  auto r = c.Send(PostJson(Event(1), s.token()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 201);
  r = c.Send(Get("/healthz"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(s.Stop(), 0);
  fs::remove_all(dir);
}

// --- Identity over HTTP: registry, client_credentials, token exchange, introspection, revocation.

TEST(Serve, IdentityTokensOverHttp) {
  fs::path dir = TempDir("identity");
  fs::path data = dir / "data";
  ServeProcess s(data, {"--log-level", "warn"});
  ASSERT_TRUE(s.started());
  auto c = s.Client();
  const std::string issuer = s.url();  // identity.issuer is not set: the URL listened on

  auto jwks = c.Send(Get("/.well-known/jwks.json"));
  ASSERT_TRUE(jwks.ok());
  ASSERT_EQ(jwks->status, 200);
  auto published = crypto::Jwks::Parse(jwks->body);
  ASSERT_TRUE(published.ok()) << jwks->body;
  EXPECT_EQ(published->size(), 1u);

  auto key = crypto::EcdsaP256PrivateKey::Generate();
  json::object agent{{"name", "planner"},
                     {"grants", json::array{"github/*"}},
                     {"permissions", json::array{"assert_initiator"}},
                     {"max_delegation_depth", 2},
                     {"client_jwk", json::parse(crypto::EcPublicJwkJson(key->public_key(), "k1"))}};
  auto r = c.Send(PostJson(json::serialize(agent), "", "/v1/agents"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);  // registration changes state: it needs an admin token
  r = c.Send(PostJson(json::serialize(agent), s.token(), "/v1/agents"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 201) << r->body;
  json::object prod{{"name", "prod-bot"},
                    {"environment", "prod"},
                    {"grants", json::array{"db/read"}},
                    {"client_secret", true}};
  r = c.Send(PostJson(json::serialize(prod), s.token(), "/v1/agents"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 409) << r->body;
  EXPECT_NE(r->body.find("business owner"), std::string::npos);

  auto assertion = [&](const std::string& jti) {
    json::object claims{{"iss", "planner"},
                        {"sub", "planner"},
                        {"aud", issuer + "/oauth2/token"},
                        {"exp", ::time(nullptr) + 60},
                        {"iat", ::time(nullptr)},
                        {"jti", jti}};
    return *crypto::SignJwsEs256(R"({"alg":"ES256","kid":"k1"})", json::serialize(claims), *key);
  };
  const std::string kBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
  std::string a1 = assertion("a1");
  r = c.Send(PostForm("/oauth2/token", {{"grant_type", "client_credentials"},
                                        {"client_id", "planner"},
                                        {"client_assertion_type", kBearer},
                                        {"client_assertion", a1},
                                        {"audience", issuer}}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->headers.Get("cache-control").value_or(""), "no-store");
  std::string svid(json::parse(r->body).as_object().at("access_token").as_string());
  // The same assertion again is a replay.
  r = c.Send(PostForm("/oauth2/token", {{"grant_type", "client_credentials"},
                                        {"client_id", "planner"},
                                        {"client_assertion_type", kBearer},
                                        {"client_assertion", a1},
                                        {"audience", issuer}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body).as_object().at("error"), "invalid_client");

  auto exchange = [&](const std::string& jti, const std::string& scope) {
    std::vector<std::pair<std::string, std::string>> f = {
        {"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"},
        {"client_id", "planner"},
        {"client_assertion_type", kBearer},
        {"client_assertion", assertion(jti)},
        {"subject_token", R"({"sub":"nightly-triage","iss":"ci"})"},
        {"subject_token_type", "urn:custody:params:oauth:token-type:initiator-assertion"},
        {"actor_token", svid},
        {"actor_token_type", "urn:ietf:params:oauth:token-type:jwt"},
        {"audience", "custody-gateway"},
        {"objective", "triage issues"}};
    if (!scope.empty()) f.emplace_back("scope", scope);
    return c.Send(PostForm("/oauth2/token", f));
  };
  r = exchange("a2", "fs/write");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body).as_object().at("error"), "invalid_scope");
  r = exchange("a3", "");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  std::string access(json::parse(r->body).as_object().at("access_token").as_string());

  r = c.Send(PostForm("/oauth2/introspect", {{"token", access}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);  // introspection is authenticated
  r = c.Send(PostForm("/oauth2/introspect", {{"token", access}}, s.token()));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200);
  auto info = json::parse(r->body).as_object();
  EXPECT_EQ(info.at("active"), true);
  EXPECT_EQ(info.at("scope"), "github/*");
  EXPECT_EQ(info.at("initiator_verification"), "asserted");
  std::string sid(info.at("sid").as_string());

  r = c.Send(Get("/v1/sessions/" + sid));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);  // sessions name people: reading them needs a token
  ClientRequest get_session = Get("/v1/sessions/" + sid);
  get_session.headers.Set("authorization", "Bearer " + s.token());
  r = c.Send(get_session);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto session = json::parse(r->body).as_object().at("session").as_object();
  EXPECT_EQ(session.at("initiator").as_object().at("asserted_by"), "planner");
  EXPECT_EQ(session.at("status"), "active");

  r = c.Send(PostJson("{\"reason\":\"e2e\"}", s.token(), "/v1/sessions/" + sid + "/revoke"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  r = c.Send(PostForm("/oauth2/introspect", {{"token", access}}, s.token()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::parse(r->body).as_object().at("active"), false);

  // Every identity event is in the ledger, and none carries a token.
  ASSERT_EQ(s.Stop(), 0);
  std::string out;
  ASSERT_EQ(LedgerVerify(data, &out), 0) << out;
  ASSERT_EQ(RunCommand({"/usr/bin/sqlite3", (data / "ledger.db").string(),
                        "SELECT CAST(data AS TEXT) FROM leaves ORDER BY idx"},
                       &out),
            0);
  for (const char* kind : {"agent.register", "credential.issue", "session.start", "revocation"}) {
    EXPECT_NE(out.find(std::string("\"kind\":\"") + kind + "\""), std::string::npos) << kind;
  }
  EXPECT_EQ(out.find(svid), std::string::npos);
  EXPECT_EQ(out.find(access), std::string::npos);
  EXPECT_EQ(out.find("eyJ"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace custody
