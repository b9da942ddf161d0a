// The `unicorn` client commands against a coordinator that serves gRPC over
// TLS (coordinator.tls; a self-signed certificate for 127.0.0.1 made by
// openssl here): `unicorn up` waits for it over TLS, `generate --tls-ca`
// and `generate --config` (the config's tls section) get the same greedy
// text as each other, health/stats work over TLS, and a client without the
// CA fails with a clear UNAVAILABLE message that says what to pass.
#include <gtest/gtest.h>

#include "tests/integration/test_system.h"

namespace {

using unicorn::testing::Shell;
using unicorn::testing::TestSystem;

TEST(CliTls, GenerateOverTlsAndAClearErrorWithoutTheCa) {
  std::string dir =
      (std::filesystem::temp_directory_path() / ("uccli-tls" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  const std::string cert = dir + "/server.pem", key = dir + "/server.key";
  // The certificate names the address the clients dial (gRPC checks it).
  auto gen = Shell(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
      key + " -out " + cert);
  ASSERT_EQ(gen.code, 0) << gen.out;
  TestSystem sys("ct", UNICORN_SOURCE_DIR "/models/demo",
                 "workers: {gpu: {kind: gpu, backend: cpu, threads: 1}}\n"
                 "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: gpu, ffn: gpu}]}\n",
                 "tls: {cert: " + cert + ", key: " + key + "}");
  auto up = sys.Up();  // waits for SERVING over TLS
  ASSERT_EQ(up.code, 0) << up.out;

  auto with_ca =
      sys.Cli("generate --server " + sys.address() + " --tls-ca " + cert + " -p 'The sea is' -n 6");
  EXPECT_EQ(with_ca.code, 0) << with_ca.out;
  EXPECT_GT(with_ca.out.size(), 1u);
  auto from_config = sys.Cli("generate --config " + sys.config() + " -p 'The sea is' -n 6");
  EXPECT_EQ(from_config.code, 0) << from_config.out;
  EXPECT_EQ(from_config.out, with_ca.out);  // greedy: the same text
  auto health = sys.Cli("health --config " + sys.config());
  EXPECT_EQ(health.code, 0) << health.out;
  EXPECT_NE(health.out.find("SERVING"), std::string::npos) << health.out;
  auto stats = sys.Cli("stats --json --config " + sys.config());
  EXPECT_EQ(stats.code, 0) << stats.out;
  EXPECT_NE(stats.out.find("\"requests_total\": 2"), std::string::npos) << stats.out;

  // Plaintext to the TLS port: UNAVAILABLE, and the message names the fix.
  auto plain = sys.Cli("generate --server " + sys.address() + " -p 'The sea is' -n 6");
  EXPECT_EQ(plain.code, 1) << plain.out;
  EXPECT_NE(plain.out.find("unavailable"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("--tls-ca"), std::string::npos) << plain.out;
  // TLS without the CA (the system's roots do not know this certificate):
  // the handshake fails, and the message says so.
  auto no_ca = sys.Cli("generate --server " + sys.address() + " --tls -p 'The sea is' -n 6");
  EXPECT_EQ(no_ca.code, 1) << no_ca.out;
  EXPECT_NE(no_ca.out.find("unavailable over TLS"), std::string::npos) << no_ca.out;
  EXPECT_NE(no_ca.out.find("--tls-ca"), std::string::npos) << no_ca.out;
  // A CA file that does not exist is named.
  auto missing =
      sys.Cli("generate --server " + sys.address() + " --tls-ca " + dir + "/nope.pem -p x -n 1");
  EXPECT_EQ(missing.code, 2) << missing.out;
  EXPECT_NE(missing.out.find("nope.pem"), std::string::npos) << missing.out;
  std::printf("[cli-tls] without the CA: %s", no_ca.out.c_str());

  EXPECT_EQ(sys.Down().code, 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
