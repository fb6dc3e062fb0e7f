// The single `mamori` binary. Subcommands register themselves (see command.h).
#include <algorithm>
#include <clocale>
#include <iostream>

#include "cli/command.h"

namespace mamori::cli {

std::vector<std::pair<std::string, CommandSetup>>& CommandRegistry::All() {
  static std::vector<std::pair<std::string, CommandSetup>> commands;
  return commands;
}

void PrintError(const std::string& message) { std::cerr << "mamori: " << message << "\n"; }

}  // namespace mamori::cli

int main(int argc, char** argv) {
  // UTF-8 character handling whatever the environment's locale: libarchive
  // converts member names through it, and "C" cannot hold 顧客/名簿.csv.
  if (!std::setlocale(LC_CTYPE, "C.UTF-8")) std::setlocale(LC_CTYPE, "");
  CLI::App app{"mamori (守り): keeps personal data from leaking, and helps respond when it does"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mamori 0.1.0");
  int exit_code = 0;
  auto& commands = mamori::cli::CommandRegistry::All();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [name, setup] : commands) setup(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    // CLI11 uses 0 for --help; every real usage error is exit code 2.
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
