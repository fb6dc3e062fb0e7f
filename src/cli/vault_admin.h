// Shared by the `mamori admin ...` subcommand files (vault_admin_cmd.cc and
// the files that add to it, e.g. vault_governance_cmd.cc).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mamori::cli {

// Calls the vault admin API with the profile's device certificate and
// session, prints the JSON answer; returns the exit code (0, 1 refused, 2 error).
int VaultAdminCall(const std::string& profile_dir, const std::string& method,
                   const std::string& target, const nlohmann::json& body = nullptr);
// $MAMORI_PROFILE, else ~/.mamori.
std::string VaultProfileDir();

}  // namespace mamori::cli
