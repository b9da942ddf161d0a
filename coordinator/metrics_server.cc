#include "coordinator/metrics_server.h"

#include <httplib.h>

#include "absl/strings/str_cat.h"

namespace unicorn {

MetricsServer::~MetricsServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(int port,
                                                              std::function<std::string()> render) {
  auto s = std::unique_ptr<MetricsServer>(new MetricsServer());
  s->server_ = std::make_unique<httplib::Server>();
  s->server_->Get("/metrics", [render](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  const char* host = "127.0.0.1";
  if (port == 0) {
    s->port_ = s->server_->bind_to_any_port(host);
  } else {
    s->port_ = s->server_->bind_to_port(host, port) ? port : -1;
  }
  if (s->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("[metrics] cannot listen on ", host, ":", port, " (in use, or not allowed)"));
  }
  httplib::Server* server = s->server_.get();
  s->thread_ = std::thread([server] { server->listen_after_bind(); });
  return s;
}

}  // namespace unicorn
