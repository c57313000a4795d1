// tools/udax/status_cmd.cc — `udax status MOUNTPOINT [--json]`: what the
// mount at MOUNTPOINT knows of its direct clients (docs/shared.md), asked as
// a direct client itself (Filesystem::Connect, GetSharingStatus; the asker
// is left out of the list).
//
// Text: one line per client
//   pid=P uid=U files=F mappings=M leased=BYTES revocations=R acks=A
// then the mount's totals
//   revocations=N acknowledgements=N kills=N
// --json: {"socket", "revoke_ms", "revocations", "acknowledgements", "kills",
// "clients": [{"pid", "uid", "gid", "files_open", "mappings", "leased_bytes",
// "revocations", "acknowledgements"}]}. Exit 1 when the mount cannot be
// reached (not a udax mount, or it serves no direct clients).
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "udax/fs.h"

namespace udax::cli {
namespace {

struct StatusArgs {
  std::string mountpoint;
  bool json = false;
};

int RunStatus(const StatusArgs& args) {
  auto fs = Filesystem::Connect(args.mountpoint);
  if (!fs.has_value()) {
    PrintError("status", fs.error());
    return 1;
  }
  auto st = (*fs)->GetSharingStatus();
  if (!st.has_value()) {
    PrintError("status", st.error());
    return 1;
  }
  if (args.json) {
    nlohmann::json j;
    j["socket"] = st->socket;
    j["revoke_ms"] = st->revoke_ms;
    j["revocations"] = st->revocations;
    j["acknowledgements"] = st->acknowledgements;
    j["kills"] = st->kills;
    j["clients"] = nlohmann::json::array();
    for (const DirectClientInfo& c : st->clients) {
      j["clients"].push_back({{"pid", c.pid},
                              {"uid", c.uid},
                              {"gid", c.gid},
                              {"files_open", c.files_open},
                              {"mappings", c.mappings},
                              {"leased_bytes", c.leased_bytes},
                              {"revocations", c.revocations},
                              {"acknowledgements", c.acknowledgements}});
    }
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  for (const DirectClientInfo& c : st->clients) {
    std::printf("pid=%u uid=%u files=%llu mappings=%llu leased=%llu revocations=%llu acks=%llu\n", c.pid,
                c.uid, static_cast<unsigned long long>(c.files_open),
                static_cast<unsigned long long>(c.mappings), static_cast<unsigned long long>(c.leased_bytes),
                static_cast<unsigned long long>(c.revocations),
                static_cast<unsigned long long>(c.acknowledgements));
  }
  std::printf("revocations=%llu acknowledgements=%llu kills=%llu\n",
              static_cast<unsigned long long>(st->revocations),
              static_cast<unsigned long long>(st->acknowledgements), static_cast<unsigned long long>(st->kills));
  return 0;
}

}  // namespace

void SetupStatus(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* sub = app.add_subcommand("status", "list the direct clients of the udax mount at MOUNTPOINT");
  sub->add_flag("--json", args->json, "print a JSON object");
  sub->add_option("MOUNTPOINT", args->mountpoint, "where udax is mounted")->required();
  sub->callback([args, exit_code] { *exit_code = RunStatus(*args); });
}

}  // namespace udax::cli
