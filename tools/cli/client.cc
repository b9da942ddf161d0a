#include "tools/cli/client.h"

#include <grpcpp/grpcpp.h>

#include <thread>

#include "common/config.h"
#include "proto/grpc/health/v1/health.grpc.pb.h"
#include "tools/cli/commands.h"

namespace unicorn::cli {
namespace {

Status FromGrpc(const grpc::Status& s, const std::string& address) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    msg = absl::StrCat("coordinator at ", address, " unavailable (", msg,
                       "); is it running? try `unicorn up`");
  }
  return Status(static_cast<absl::StatusCode>(s.error_code()), msg);
}

}  // namespace

Client::Client(const std::string& address)
    : address_(address),
      channel_(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
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
  if (!s.ok()) return FromGrpc(s, address_);
  return resp;
}

StatusOr<v1::ProfileResponse> Client::Profile(const v1::ProfileRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::ProfileResponse resp;
  grpc::Status s = stub_->Profile(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, address_);
  return resp;
}

Status Client::Generate(const v1::GenerateRequest& req,
                        const std::function<void(const v1::GenerateResponse&)>& on_token) {
  grpc::ClientContext ctx;
  auto reader = stub_->Generate(&ctx, req);
  v1::GenerateResponse resp;
  while (reader->Read(&resp)) on_token(resp);
  return FromGrpc(reader->Finish(), address_);
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
  Status s = FromGrpc(reader->Finish(), address_);
  done = true;
  if (watcher.joinable()) watcher.join();
  return s;
}

StatusOr<v1::StatsResponse> Client::Stats() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::StatsResponse resp;
  grpc::Status s = stub_->Stats(&ctx, v1::StatsRequest(), &resp);
  if (!s.ok()) return FromGrpc(s, address_);
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
