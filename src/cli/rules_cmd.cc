// `mamori rules`: list the detection rules and check their examples.
#include <iostream>

#include "cli/command.h"
#include "detect/detect.h"

namespace mamori::cli {
namespace {

void Setup(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("rules", "List detection rules, or check their examples");
  cmd->require_subcommand(1);
  auto dir = std::make_shared<std::string>();
  auto* list = cmd->add_subcommand("list", "List the detection types");
  list->add_option("--rules", *dir, "Rules directory (default: the shipped rules)");
  list->callback([dir, exit_code] {
    auto rules = dir->empty() ? detect::RuleSet::LoadDefault() : detect::RuleSet::LoadDirectory(*dir);
    if (!rules.ok()) {
      PrintError(rules.status().message());
      *exit_code = 2;
      return;
    }
    for (const auto& r : (*rules)->rules())
      std::cout << r.type << "\t" << detect::RiskName(r.risk) << "\t" << r.name << "\n";
  });
  auto* check = cmd->add_subcommand("check", "Run every rule's examples and negative examples");
  check->add_option("--rules", *dir, "Rules directory (default: the shipped rules)");
  check->callback([dir, exit_code] {
    auto rules = dir->empty() ? detect::RuleSet::LoadDefault() : detect::RuleSet::LoadDirectory(*dir);
    if (!rules.ok()) {
      PrintError(rules.status().message());
      *exit_code = 2;
      return;
    }
    auto failures = (*rules)->CheckExamples();
    for (const auto& f : failures) std::cout << "FAIL " << f << "\n";
    std::cout << (*rules)->rules().size() << " rules checked, " << failures.size() << " failures\n";
    *exit_code = failures.empty() ? 0 : 1;
  });
}

MAMORI_REGISTER_COMMAND("rules", Setup);

}  // namespace
}  // namespace mamori::cli
