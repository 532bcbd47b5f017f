// zfarm-keygen: makes a CURVE key pair for a zfarm program (PROTOCOL.md 12):
// BASE.key holds the pair and stays private (mode 0600); BASE.pub holds the
// public key, to copy into the allow-lists (--allow) of the programs it
// connects to, or to give as --curve-server-key to those that connect to it.
#include <cstdio>
#include <string>

#include "zfarm/cli.hpp"
#include "zfarm/curve.hpp"
#include "zfarm/version.hpp"

int main(int argc, char** argv) {
    using namespace zfarm;
    CLI::App app{
        "zfarm keygen: writes a CURVE key pair, BASE.key (secret, mode 0600) and "
        "BASE.pub (public)",
        "zfarm-keygen"};
    app.set_version_flag("--version", std::string(k_version));
    std::string base;
    app.add_option("BASE", base, "Path and name of the key files, without extension")->required();
    if (auto rc = parse_command_line(app, argc, argv)) return *rc;

    const std::string prog = app.get_name();
    if (!curve::available()) return usage_error(prog, "this libzmq was built without CURVE");
    // Not usage errors: one line, exit 1.
    auto keys = curve::generate();
    if (!keys) {
        std::fprintf(stderr, "%s: error: %s\n", prog.c_str(), keys.error().c_str());
        return 1;
    }
    auto written = curve::write_key_files(base, *keys);
    if (!written) {
        std::fprintf(stderr, "%s: error: %s\n", prog.c_str(), written.error().c_str());
        return 1;
    }
    std::printf("wrote %s (secret: keep it private) and %s (public key %s)\n",
                written->first.c_str(), written->second.c_str(),
                curve::to_z85(keys->public_key).c_str());
    return k_exit_ok;
}
