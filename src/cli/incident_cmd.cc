// `mamori incident`: incident response from the audit trail to the legal
// duties (docs/incident.md).
#include <fmt/format.h>

#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "common/file_util.h"
#include "incident/assess.h"
#include "incident/facts.h"
#include "incident/rules.h"

namespace mamori::cli {
namespace {

using namespace mamori::incident;

struct AssessOptions {
  std::string facts_path;
  std::string format = "text";
  std::vector<std::string> rules_dirs;
};

Result<RuleCatalog> LoadCatalog(const std::vector<std::string>& dirs) {
  if (dirs.empty()) return RuleCatalog::LoadDefault();
  return RuleCatalog::Load(dirs);
}

Result<Facts> LoadFactsFile(const std::string& path) {
  auto text = ReadFile(path, kMaxFactsBytes);
  if (!text.ok()) return text.status().WithContext("reading the facts file");
  auto f = ParseFacts(*text);
  if (!f.ok()) return f.status().WithContext(path);
  return f;
}

int RunAssess(const AssessOptions& o) {
  auto catalog = LoadCatalog(o.rules_dirs);
  if (!catalog.ok()) {
    PrintError(catalog.status().ToString());
    return 2;
  }
  auto facts = LoadFactsFile(o.facts_path);
  if (!facts.ok()) {
    PrintError(facts.status().ToString());
    return 2;
  }
  auto a = Assess(*facts, *catalog);
  if (!a.ok()) {
    PrintError(a.status().WithContext(o.facts_path).ToString());
    return 2;
  }
  if (o.format == "json") {
    std::cout << AssessmentToJson(*a).dump(2) << "\n";
  } else {
    std::cout << AssessmentToText(*a);
  }
  return 0;
}

void Setup(CLI::App& app, int* exit_code) {
  auto* inc =
      app.add_subcommand("incident", "Incident response: duties, deadlines, documents, cost");
  inc->require_subcommand(1);

  auto assess_opts = std::make_shared<AssessOptions>();
  auto* assess = inc->add_subcommand(
      "assess", "Run the APPI / My Number rule engine on a facts file (exit 0; 2 on bad input)");
  assess->add_option("--facts", assess_opts->facts_path, "facts JSON file (see docs/incident.md)")
      ->required();
  assess->add_option("--format", assess_opts->format, "json (the contract) or text")
      ->check(CLI::IsMember({"json", "text"}));
  assess->add_option("--rules", assess_opts->rules_dirs,
                     "rule-set directory (repeatable); default rules/incident");
  assess->callback([assess_opts, exit_code] { *exit_code = RunAssess(*assess_opts); });
}

}  // namespace

MAMORI_REGISTER_COMMAND("incident", Setup);

}  // namespace mamori::cli
