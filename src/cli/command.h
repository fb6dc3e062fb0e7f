// Registration of `mamori` subcommands.
//
// Each subcommand lives in its own file in src/cli/ and registers itself with
// MAMORI_REGISTER_COMMAND. Its setup function adds a CLI11 subcommand and sets
// *exit_code from its callback: 0 success, 1 findings/refusal, 2 error.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace mamori::cli {

using CommandSetup = std::function<void(CLI::App& app, int* exit_code)>;

struct CommandRegistry {
  static std::vector<std::pair<std::string, CommandSetup>>& All();
  struct Registrar {
    Registrar(std::string name, CommandSetup setup) {
      All().emplace_back(std::move(name), std::move(setup));
    }
  };
};

// Prints "mamori: <message>" to stderr. Use for every user-facing error.
void PrintError(const std::string& message);

}  // namespace mamori::cli

#define MAMORI_REGISTER_COMMAND(name, fn) \
  static ::mamori::cli::CommandRegistry::Registrar MAMORI_CONCAT(_mamori_cmd_, __LINE__)(name, fn)
#ifndef MAMORI_CONCAT
#define MAMORI_CONCAT_INNER(a, b) a##b
#define MAMORI_CONCAT(a, b) MAMORI_CONCAT_INNER(a, b)
#endif
