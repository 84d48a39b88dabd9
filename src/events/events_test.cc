// The one derivation of index columns: every kind of event is indexed by the session and agent
// it concerns, whoever appends it; and the recorder's bytes are the canonical (RFC 8785) bytes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>

#include "crypto/ed25519.h"
#include "events/columns.h"
#include "events/recorder.h"
#include "ledger/sqlite_ledger_store.h"

namespace custody::events {
namespace {

namespace json = boost::json;

TEST(Columns, ActorThenTargetThenAContainmentsSubject) {
  auto c = ColumnsOfText(
      R"({"event_id":"e1","kind":"action.decision","time":"2026-01-01T00:00:00.000Z",)"
      R"("actor":{"agent":"worker","session":"s-2"},"target":{"session":"s-9","agent":"x"}})");
  EXPECT_EQ(c.event_id, "e1");
  EXPECT_EQ(c.kind, "action.decision");
  EXPECT_EQ(c.time, "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(c.session, "s-2");
  EXPECT_EQ(c.agent, "worker");

  // An event about a session it did not act as (a revocation by an admin).
  c = ColumnsOfText(R"({"kind":"revocation","target":{"session":"s-9"},"by":"admin"})");
  EXPECT_EQ(c.session, "s-9");
  EXPECT_EQ(c.agent, "");
  // A manual containment names its subject by scope.
  c = ColumnsOfText(R"({"kind":"containment","scope":"session","subject":"s-4"})");
  EXPECT_EQ(c.session, "s-4");
  c = ColumnsOfText(R"({"kind":"containment","scope":"agent","subject":"worker"})");
  EXPECT_EQ(c.agent, "worker");
  EXPECT_EQ(c.session, "");
  // A tripwire's containment acted as the session that tripped it.
  c = ColumnsOfText(
      R"({"kind":"containment","scope":"agent","subject":"worker","actor":{"session":"s-5","agent":"worker"}})");
  EXPECT_EQ(c.session, "s-5");
}

TEST(Columns, WhatIsNotAnObjectOrAStringIsLeftEmpty) {
  for (const char* bad : {"", "[1]", "not json", "42", R"({"kind":7,"actor":"planner"})"}) {
    auto c = ColumnsOfText(bad);
    EXPECT_EQ(c.kind, "") << bad;
    EXPECT_EQ(c.session, "") << bad;
    EXPECT_EQ(c.agent, "") << bad;
  }
}

TEST(Recorder, RecordsCanonicalBytesWithTheDerivedColumnsAndRefusesWhatIsNotAnObject) {
  auto dir =
      std::filesystem::temp_directory_path() / ("custody_events_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto store = ledger::SqliteLedgerStore::Open((dir / "ledger.db").string());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto key = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  ledger::LedgerOptions lo;
  lo.origin = "custody.test/events";
  auto led = ledger::Ledger::Open(std::move(*store), std::move(*key), lo);
  ASSERT_TRUE(led.ok()) << led.status().ToString();
  Recorder rec(**led);

  json::object e{{"time", "t"},
                 {"kind", "session.start"},
                 {"event_id", "e-1"},
                 {"actor", {{"session", "s-1"}, {"agent", "planner"}}},
                 {"n", 1.5}};
  auto a = rec.Record(e);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto leaf = (*led)->GetEntry(a->index);
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(
      leaf->data,
      R"({"actor":{"agent":"planner","session":"s-1"},"event_id":"e-1","kind":"session.start","n":1.5,"time":"t"})");
  EXPECT_EQ(leaf->columns.session, "s-1");
  EXPECT_EQ(leaf->columns.agent, "planner");
  EXPECT_EQ(leaf->columns.event_id, "e-1");

  // Text takes the same path to the same bytes.
  auto b = rec.RecordText(
      R"({ "kind":"session.start", "event_id":"e-1", "time":"t", "n":1.5,
           "actor":{"agent":"planner","session":"s-1"} })");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ((*led)->GetEntry(b->index)->data, leaf->data);
  EXPECT_EQ(rec.RecordText("{\"a\":1,\"a\":2}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(rec.RecordText("{").status().code(), StatusCode::kInvalidArgument);
  led->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace custody::events
