from crawler.urls import host_key, normalize_url, resolve_link


def test_normalize_drops_fragment_default_port_and_tracking_params():
    url = "HTTP://Example.COM:80/a/../fzxc/./t1.html?b=2&utm_source=wx&a=1#top"
    assert normalize_url(url) == "http://example.com/fzxc/t1.html?a=1&b=2"


def test_normalize_keeps_non_default_port_and_ipv6_brackets():
    assert normalize_url("http://[::1]:8080/a") == "http://[::1]:8080/a"
    assert normalize_url("https://x.cn:8443") == "https://x.cn:8443/"


def test_normalize_encodes_idn_host_and_chinese_path():
    assert normalize_url("https://例子.中国/反诈 宣传") == (
        "https://xn--fsqu00a.xn--fiqs8s/%E5%8F%8D%E8%AF%88%20%E5%AE%A3%E4%BC%A0")


def test_resolve_link_ignores_mailto_javascript_and_non_http_schemes():
    base = "http://a.cn/fzxc/index.html"
    for href in ("mailto:x@a.cn", "javascript:void(0)", "ftp://a.cn/x", "file:///etc/passwd",
                 "tel:110", "#top", "   "):
        assert resolve_link(base, href) is None
    assert resolve_link(base, "../bwc/list.htm") == "http://a.cn/bwc/list.htm"


def test_resolve_link_survives_malformed_hosts():
    assert resolve_link("http://a.cn/", "http://[bad/") is None


def test_host_key_includes_scheme_and_port():
    assert host_key("https://a.cn/x") == "https://a.cn:443"
    assert host_key("http://127.0.0.1:8000/x") == "http://127.0.0.1:8000"


def test_normalize_strips_servlet_session_ids():
    assert normalize_url("http://a.gov.cn/art/2024/3/15/art_1_2.html;jsessionid=AB12CD?x=1") == (
        "http://a.gov.cn/art/2024/3/15/art_1_2.html?x=1")
