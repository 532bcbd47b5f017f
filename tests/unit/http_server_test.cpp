// Unit tests for sink/http_server.hpp: the --http address, and the status
// server's routes, status codes and content types, over a real loopback
// socket with httplib's client.
#include "http_server.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

namespace {

using zfarm::sink::http_address;
using zfarm::sink::parse_http_address;
using zfarm::sink::snapshot_board;
using zfarm::sink::status_server;
using zfarm::sink::status_snapshot;

TEST(HttpAddress, HostAndPort) {
    const auto a = parse_http_address("0.0.0.0:9100");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "0.0.0.0");
    EXPECT_EQ(a->port, 9100);
}

TEST(HttpAddress, PortAloneMeansLoopback) {
    const auto a = parse_http_address(":0");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "127.0.0.1");
    EXPECT_EQ(a->port, 0);
}

TEST(HttpAddress, Ipv6InBrackets) {
    const auto a = parse_http_address("[::1]:8080");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "::1");
    EXPECT_EQ(a->port, 8080);
}

TEST(HttpAddress, RejectsWhatIsNotHostColonPort) {
    for (const char* bad :
         {"", "9100", "localhost", "host:", "host:65536", "host:-1", "host:9x", "::1:80"}) {
        const auto a = parse_http_address(bad);
        ASSERT_FALSE(a) << bad;
        EXPECT_NE(a.error().find("--http"), std::string::npos);
        EXPECT_EQ(a.error().find('\n'), std::string::npos) << "one line";
    }
}

class StatusServer : public ::testing::Test {
  protected:
    void SetUp() override {
        auto s = status_server::start(http_address{"127.0.0.1", 0}, board);
        ASSERT_TRUE(s) << s.error();
        server = std::move(*s);
        ASSERT_NE(server->port(), 0);
        client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
        client->set_connection_timeout(5);
        client->set_read_timeout(5);
    }

    void publish_one_job() {
        auto s = std::make_shared<status_snapshot>();
        s->jobs.push_back({"render", 7, 1, 10, 2.0, 1.0, 0, 4, false});
        board.publish(std::move(s));
    }

    snapshot_board board;
    std::unique_ptr<status_server> server;
    std::unique_ptr<httplib::Client> client;
};

TEST_F(StatusServer, ServesTheDashboardPage) {
    const auto r = client->Get("/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
    EXPECT_NE(r->body.find("<!DOCTYPE html>"), std::string::npos);
    EXPECT_NE(r->body.find("id=\"jobs\""), std::string::npos);
    EXPECT_EQ(r->body.find("http://"), std::string::npos) << "no external resource";
    EXPECT_EQ(r->body.find("https://"), std::string::npos) << "no external resource";
}

TEST_F(StatusServer, StatusAndMetricsWaitForTheFirstSnapshot) {
    auto r = client->Get("/status");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    publish_one_job();
    r = client->Get("/status");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    const auto j = nlohmann::json::parse(r->body);
    ASSERT_EQ(j["jobs"].size(), 1u);
    EXPECT_EQ(j["jobs"][0]["name"], "render");
    EXPECT_EQ(j["jobs"][0]["recorded"], 8);
    EXPECT_EQ(j["jobs"][0]["percent"], 80.0);
}

TEST_F(StatusServer, MetricsAreTextFormat004) {
    publish_one_job();
    const auto r = client->Get("/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(r->body.find("zfarm_tasks_total{job=\"render\",status=\"ok\"} 7\n"),
              std::string::npos);
}

TEST_F(StatusServer, UnknownPathIs404AndOtherMethods405) {
    publish_one_job();
    auto r = client->Get("/nothing/here");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    r = client->Post("/status", "x", "text/plain");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 405);
    EXPECT_EQ(r->get_header_value("Allow"), "GET, HEAD");
    r = client->Delete("/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 405);
    r = client->Head("/status");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(StatusServer, SecondServerOnTheSamePortSaysWhy) {
    snapshot_board other;
    const auto s = status_server::start(http_address{"127.0.0.1", server->port()}, other);
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().find("cannot listen"), std::string::npos) << s.error();
}

TEST(StatusServerLife, StopsAtOnceWhenDestroyedRightAfterStarting) {
    snapshot_board board;
    for (int i = 0; i < 20; ++i) {
        auto s = status_server::start(http_address{"127.0.0.1", 0}, board);
        ASSERT_TRUE(s) << s.error();
    }
}

}  // namespace
