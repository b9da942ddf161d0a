#include "tools/cli/client.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "common/config.h"
#include "proto/grpc/health/v1/health.grpc.pb.h"
#include "tools/cli/commands.h"

namespace unicorn::cli {
namespace {

constexpr int kMaxReceiveBytes = 1 << 30;

Status FromGrpc(const grpc::Status& s, const std::string& address, bool tls) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    // gRPC reports a failed TLS handshake as UNAVAILABLE too; say which side
    // of it to check.
    msg = tls ? absl::StrCat("coordinator at ", address, " unavailable over TLS (", msg,
                             "); is it running, and does --tls-ca (or the config's "
                             "coordinator.tls) name the CA that signed its certificate?")
              : absl::StrCat("coordinator at ", address, " unavailable (", msg,
                             "); is it running? try `unicorn up` (a coordinator serving TLS "
                             "needs --tls-ca FILE, or --config with its tls section)");
  }
  return Status(static_cast<absl::StatusCode>(s.error_code()), msg);
}

StatusOr<std::string> ReadPem(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::shared_ptr<grpc::Channel> MakeChannel(const Endpoint& e) {
  grpc::ChannelArguments args;
  // A Profile answer carries a whole window's trace: tens of MB for a busy
  // minute, over gRPC's default 4 MiB receive limit.
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  if (!e.tls) return grpc::CreateCustomChannel(e.address, grpc::InsecureChannelCredentials(), args);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = e.ca_pem;
  if (!e.server_name.empty()) args.SetSslTargetNameOverride(e.server_name);
  return grpc::CreateCustomChannel(e.address, grpc::SslCredentials(ssl), args);
}

// The TLS part of an endpoint from a config's coordinator.tls (roots only).
Status TlsFromConfig(const CoordinatorConfig& cc, Endpoint* e) {
  if (cc.tls_cert.empty()) return absl::OkStatus();
  e->tls = true;
  const std::string& ca = cc.tls_ca.empty() ? cc.tls_cert : cc.tls_ca;
  UNICORN_ASSIGN_OR_RETURN(
      e->ca_pem, ReadPem(ca, cc.tls_ca.empty() ? "coordinator.tls.cert" : "coordinator.tls.ca"));
  return absl::OkStatus();
}

Endpoint PlainEndpoint(const std::string& address) {
  Endpoint e;
  e.address = address;
  return e;
}

}  // namespace

void AddServerFlags(CLI::App* cmd, ServerFlags* f) {
  cmd->add_option("-s,--server", f->server, "coordinator address (default: the config's)");
  cmd->add_option("--config", f->config,
                  "config whose coordinator address and tls section to use (default: "
                  "configs/default.yaml)");
  cmd->add_flag("--tls", f->tls, "use TLS with the system's root certificates");
  cmd->add_option("--tls-ca", f->tls_ca, "use TLS, trusting this CA certificate (PEM)");
  cmd->add_option("--tls-server-name", f->tls_server_name,
                  "name to check the server's certificate against (default: the address's host)");
}

StatusOr<Endpoint> ResolveEndpoint(const ServerFlags& f) {
  Endpoint e;
  StatusOr<Config> config = absl::NotFoundError("no config");
  if (!f.config.empty()) {
    config = LoadConfig(f.config);
    if (!config.ok()) return config.status();
  } else {
    config = LoadConfig(DefaultConfigPath());  // optional: absent or broken = defaults
  }
  const CoordinatorConfig cc = config.ok() ? config->coordinator : CoordinatorConfig();
  e.address = f.server.empty() ? cc.grpc_address : f.server;
  if (!f.tls_ca.empty()) {
    e.tls = true;
    UNICORN_ASSIGN_OR_RETURN(e.ca_pem, ReadPem(f.tls_ca, "--tls-ca"));
  } else if (f.server.empty() || f.server == cc.grpc_address) {
    UNICORN_RETURN_IF_ERROR(TlsFromConfig(cc, &e));
  }
  e.tls = e.tls || f.tls;
  e.server_name = f.tls_server_name;
  return e;
}

StatusOr<Endpoint> EndpointOf(const Config& config) {
  Endpoint e;
  e.address = config.coordinator.grpc_address;
  UNICORN_RETURN_IF_ERROR(TlsFromConfig(config.coordinator, &e));
  return e;
}

Client::Client(const std::string& address) : Client(PlainEndpoint(address)) {}

Client::Client(const Endpoint& endpoint)
    : address_(endpoint.address),
      tls_(endpoint.tls),
      channel_(MakeChannel(endpoint)),
      stub_(v1::Unicorn::NewStub(channel_)) {}

bool Client::Serving(std::chrono::milliseconds timeout) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status s = health->Check(&ctx, req, &resp);
  return s.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

StatusOr<v1::ModelInfoResponse> Client::ModelInfo() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ModelInfoResponse resp;
  grpc::Status s = stub_->ModelInfo(&ctx, v1::ModelInfoRequest(), &resp);
  if (!s.ok()) return FromGrpc(s, address_, tls_);
  return resp;
}

StatusOr<v1::ProfileResponse> Client::Profile(const v1::ProfileRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::ProfileResponse resp;
  grpc::Status s = stub_->Profile(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, address_, tls_);
  return resp;
}

Status Client::Generate(const v1::GenerateRequest& req,
                        const std::function<void(const v1::GenerateResponse&)>& on_token) {
  grpc::ClientContext ctx;
  auto reader = stub_->Generate(&ctx, req);
  v1::GenerateResponse resp;
  while (reader->Read(&resp)) on_token(resp);
  return FromGrpc(reader->Finish(), address_, tls_);
}

Status Client::Chat(const v1::ChatRequest& req,
                    const std::function<void(const v1::GenerateResponse&)>& on_token,
                    const std::atomic<bool>* cancel) {
  grpc::ClientContext ctx;
  std::atomic<bool> done = false;
  std::thread watcher;
  if (cancel != nullptr) {
    watcher = std::thread([&] {
      while (!done.load()) {
        if (cancel->load()) {
          ctx.TryCancel();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  auto reader = stub_->Chat(&ctx, req);
  v1::GenerateResponse resp;
  while (reader->Read(&resp)) on_token(resp);
  Status s = FromGrpc(reader->Finish(), address_, tls_);
  done = true;
  if (watcher.joinable()) watcher.join();
  return s;
}

StatusOr<v1::StatsResponse> Client::Stats() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::StatsResponse resp;
  grpc::Status s = stub_->Stats(&ctx, v1::StatsRequest(), &resp);
  if (!s.ok()) return FromGrpc(s, address_, tls_);
  return resp;
}

std::string ServerAddress(const std::string& flag) {
  if (!flag.empty()) return flag;
  auto config = LoadConfig(DefaultConfigPath());
  return config.ok() ? config->coordinator.grpc_address : CoordinatorConfig().grpc_address;
}

std::string DefaultHttpUrl() {
  auto config = LoadConfig(DefaultConfigPath());
  int port = config.ok() ? config->coordinator.http_port : CoordinatorConfig().http_port;
  return absl::StrCat("http://127.0.0.1:", port);
}

}  // namespace unicorn::cli
