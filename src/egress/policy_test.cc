#include "egress/policy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace mamori::egress {
namespace {

const char kBase[] = R"(
version: 1
settings: {preview_bytes: 1024, spool_memory_bytes: 1MiB}
users: {by_ip: {"10.0.0.5": hanako}}
categories:
  unknown: {uploads: inspect, content: {block_types: [jp.my_number], max_individuals: 10}}
  personal_storage: {uploads: block, domains: [gigafile.nu, "*.mega.nz"]}
  approved:
    uploads: allow
    domains: [login.microsoftonline.com]
    tenant_headers:
      - hosts: [login.microsoftonline.com]
        headers: {Restrict-Access-To-Tenants: "example.co.jp"}
caps:
  - {name: hourly, window: 1h, max_bytes: 200MB, categories: [unknown]}
)";

TEST(EgressPolicy, ParsesAndClassifies) {
  auto p = ParsePolicy({{"a.yaml", kBase},
                        {"b.yaml", "categories: {personal_storage: {domains: [firestorage.jp]}}"}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const Policy& pol = **p;
  EXPECT_EQ(pol.settings.preview_bytes, 1024u);
  EXPECT_EQ(pol.settings.spool_memory_bytes, 1u << 20);
  std::string site;
  EXPECT_EQ(pol.Classify("103.gigafile.nu", &site).name, "personal_storage");
  EXPECT_EQ(site, "gigafile.nu");
  EXPECT_EQ(pol.Classify("gigafile.nu").name, "personal_storage");
  EXPECT_EQ(pol.Classify("notgigafile.nu").name, "unknown");
  EXPECT_EQ(pol.Classify("x.firestorage.jp").name, "personal_storage");
  EXPECT_EQ(pol.Classify("mega.nz").name, "personal_storage");
  EXPECT_EQ(pol.Classify("www.example.co.jp", &site).name, "unknown");
  EXPECT_EQ(site, "example.co.jp");
  ASSERT_EQ(pol.caps.size(), 1u);
  EXPECT_EQ(pol.caps[0].max_bytes, 200'000'000u);
  EXPECT_EQ(pol.caps[0].window_seconds, 3600);
  EXPECT_EQ(pol.ResolveUser("", "10.0.0.5"), "hanako");
  EXPECT_EQ(pol.ResolveUser("taro", "10.0.0.5"), "taro");
  EXPECT_EQ(pol.ResolveUser("", "10.0.0.6"), "ip:10.0.0.6");
  EXPECT_EQ(pol.ResolveUser("", ""), "anonymous");
  EXPECT_EQ(pol.version.size(), 12u);
}

TEST(EgressPolicy, LongestMatchWins) {
  auto p = ParsePolicy(
      {{"a.yaml", kBase}, {"b.yaml", "categories: {approved: {domains: [corp.gigafile.nu]}}"}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Classify("a.corp.gigafile.nu").name, "approved");
  EXPECT_EQ((*p)->Classify("b.gigafile.nu").name, "personal_storage");
}

TEST(EgressPolicy, ErrorsNameTheFileAndKey) {
  auto bad = [](const std::string& text) {
    auto p = ParsePolicy({{"x.yaml", text}});
    EXPECT_FALSE(p.ok()) << text;
    return p.ok() ? std::string() : p.status().message();
  };
  EXPECT_NE(bad("categories: {}").find("unknown"), std::string::npos);
  EXPECT_NE(
      bad("categories: {unknown: {uploads: maybe}}").find("x.yaml: categories.unknown.uploads"),
      std::string::npos);
  EXPECT_NE(bad("categories: {unknown: {colour: red}}").find("colour"), std::string::npos);
  EXPECT_NE(bad("settings: {preview_bytes: 12XB}\ncategories: {unknown: {}}").find("unit"),
            std::string::npos);
  EXPECT_NE(bad("categories: {unknown: {domains: [Bad_Domain]}}").find("bad_domain"),
            std::string::npos);
  EXPECT_NE(bad("categories: {unknown: {}}\ncaps: [{window: 1h}]").find("max_bytes"),
            std::string::npos);
  EXPECT_NE(bad("categories: {unknown: {}}\ncaps: [{window: 1h, max_bytes: 1, categories: [nope]}]")
                .find("nope"),
            std::string::npos);
  EXPECT_NE(bad("categories: [").find("syntax"), std::string::npos);
  EXPECT_NE(bad("categories: {unknown: {over_memory_budget: swap}}")
                .find("categories.unknown.over_memory_budget: must be disk"),
            std::string::npos);
  EXPECT_NE(bad("settings: {memory_budget: 1KiB}\ncategories: {unknown: {}}").find("64KiB"),
            std::string::npos);
  auto twice = ParsePolicy({{"a.yaml", "categories: {unknown: {uploads: allow}}"},
                            {"b.yaml", "categories: {unknown: {uploads: block}}"}});
  EXPECT_FALSE(twice.ok());
}

TEST(EgressPolicy, RegistrableDomain) {
  EXPECT_EQ(RegistrableDomain("www.example.co.jp"), "example.co.jp");
  EXPECT_EQ(RegistrableDomain("a.b.example.com"), "example.com");
  EXPECT_EQ(RegistrableDomain("example.com"), "example.com");
  EXPECT_EQ(RegistrableDomain("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(RegistrableDomain("x.y.bbc.co.uk"), "bbc.co.uk");
}

TEST(EgressPolicy, ShippedPolicyLoads) {
  auto p = LoadPolicyDir(std::string(MAMORI_SOURCE_DIR) + "/rules/egress");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Classify("103.gigafile.nu").name, "personal_storage");
  EXPECT_EQ((*p)->Classify("www.firestorage.jp").name, "personal_storage");
  EXPECT_EQ((*p)->Classify("mega.nz").name, "personal_storage");
  EXPECT_EQ((*p)->Classify("wetransfer.com").name, "personal_storage");
  EXPECT_EQ((*p)->Classify("mail.google.com").name, "webmail");
  EXPECT_EQ((*p)->Classify("login.microsoftonline.com").name, "approved");
  EXPECT_EQ((*p)->Classify("intranet.example").name, "unknown");
  EXPECT_EQ((*p)->settings.memory_budget_bytes, 256ull << 20);
  EXPECT_TRUE((*p)->Classify("intranet.example").disk_over_budget);
  auto strict = ParsePolicy({{"s.yaml",
                              "settings: {memory_budget: 1GiB}\n"
                              "categories: {unknown: {over_memory_budget: block}}"}});
  ASSERT_TRUE(strict.ok()) << strict.status().ToString();
  EXPECT_EQ((*strict)->settings.memory_budget_bytes, 1ull << 30);
  EXPECT_FALSE((*strict)->Classify("x.test").disk_over_budget);
}

TEST(EgressPolicy, StoreReloadsAndKeepsOldOnError) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("egress_policy_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto write = [&](const std::string& text) { std::ofstream(dir / "p.yaml") << text; };
  write(kBase);
  auto store = PolicyStore::Open(dir.string());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto v1 = (*store)->Current()->version;
  auto unchanged = (*store)->Poll();
  ASSERT_TRUE(unchanged.ok());
  EXPECT_FALSE(*unchanged);
  // A bad edit: the old policy stays, the error is reported.
  write(std::string(kBase) + "\nbogus: 1\n");
  auto bad = (*store)->Poll();
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ((*store)->Current()->version, v1);
  EXPECT_NE((*store)->last_error().find("bogus"), std::string::npos);
  // A good edit is picked up.
  write(std::string(kBase) + "\n# edited\n");
  auto good = (*store)->Poll();
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(*good);
  EXPECT_NE((*store)->Current()->version, v1);
  EXPECT_TRUE((*store)->last_error().empty());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mamori::egress
