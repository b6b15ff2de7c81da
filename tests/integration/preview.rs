//! `herald preview`: a sample per locale and per path through the templates, parsed back
//! as a mail client would; one recipient's message with --row or --recipient.

use std::fs;

use mail_parser::MessageParser;

use crate::plan::multilingual;

#[test]
fn writes_a_sample_per_locale_and_a_gallery() {
    let run = multilingual()
        .args(["preview", "--campaign", "welcome", "--out", "preview"])
        .run()
        .code(0)
        .stdout("3 samples of 3 locales rendered to preview; open preview/index.html\n");
    let out = run.dir.join("preview");

    let expected = [
        ("en", "ann@example.com", "Welcome", "Hello Ann"),
        ("ja", "ken@example.com", "ようこそ", "こんにちは Ken"),
        ("ko", "min@example.com", "환영합니다", "안녕하세요 Min"),
    ];
    let index = fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(index.matches("<section class=\"locale\"").count(), 3);
    // ja-JP reaches the ja catalog: the same sample stands for both rows.
    let ja = index.split("id=\"ja\"").nth(1).unwrap();
    assert!(ja.contains("<dd class=\"values\">ja, ja-JP</dd>"), "{ja}");
    assert!(
        ja.contains(
            "<dd class=\"rows\">2 rows: lines 3 and 9 of campaigns/audiences/customers.csv</dd>"
        ),
        "{ja}"
    );
    for (locale, to, subject, greeting) in expected {
        let raw = fs::read(out.join(format!("{locale}.eml"))).unwrap();
        let message = MessageParser::default().parse(&raw).unwrap();
        let recipients: Vec<&str> = message
            .to()
            .unwrap()
            .iter()
            .filter_map(|a| a.address())
            .collect();
        assert_eq!(recipients, [to], "{locale}: exactly one recipient");
        assert_eq!(message.subject(), Some(subject));
        assert_eq!(
            message.from().unwrap().first().unwrap().address(),
            Some("news@example.com")
        );
        assert!(
            message.body_text(0).unwrap().contains(greeting),
            "{locale} text"
        );
        assert!(
            message.body_html(0).unwrap().contains(greeting),
            "{locale} html"
        );
        assert!(message.message_id().is_some());

        let html = fs::read_to_string(out.join(format!("{locale}.html"))).unwrap();
        assert!(
            html.contains(&format!("<p>{greeting}</p>")),
            "{locale}: {html}"
        );
        let section = index.split(&format!("id=\"{locale}\"")).nth(1).unwrap();
        assert!(
            section.contains(&format!("<dd class=\"subject\">{subject}</dd>")),
            "{locale} subject in index"
        );
        assert!(
            section.contains(&format!("<dd class=\"to\">{to}</dd>")),
            "{locale} to in index"
        );
        assert!(
            section.contains(&format!("<iframe src=\"{locale}.html\"")),
            "{locale} body in index"
        );
    }
}

#[test]
fn html_bodies_escape_audience_values_and_text_bodies_do_not() {
    let run = multilingual()
        .file(
            "campaigns/audiences/customers.csv",
            "email,name,locale\nsue@example.com,<b>Sue</b> & co,en\n",
        )
        .args(["preview", "--campaign", "welcome", "--out", "preview"])
        .run()
        .code(0);
    let raw = fs::read(run.dir.join("preview/en.eml")).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    assert!(
        message
            .body_html(0)
            .unwrap()
            .contains("Hello &lt;b&gt;Sue&lt;/b&gt; &amp; co")
    );
    assert!(
        message
            .body_text(0)
            .unwrap()
            .contains("Hello <b>Sue</b> & co")
    );
}

/// An `if` on a column that is empty for some rows: both branches get a sample, each
/// labelled with the rows it stands for; --recipient picks one recipient's message.
#[test]
fn every_path_through_the_templates_gets_a_sample() {
    let workspace = multilingual()
        .file(
            "campaigns/templates/welcome.txt.j2",
            "{% if recipient.name %}Dear {{ recipient.name }},{% else %}Dear customer,{% endif %}\n",
        )
        .file(
            "campaigns/templates/welcome.html.j2",
            "<p>{% if recipient.name %}Dear {{ recipient.name }},{% else %}Dear customer,{% endif %}</p>\n",
        )
        .file(
            "campaigns/audiences/customers.csv",
            "email,name,locale\nann@example.com,Ann,en\nbo@example.com,,en\ncy@example.com,Cy,en\ndi@example.com,,\nken@example.com,Ken,ja\n",
        )
        .workspace();
    workspace
        .run(["preview", "--out", "preview"])
        .code(0)
        .stdout("3 samples of 2 locales rendered to preview; open preview/index.html\n");
    let out = workspace.path().join("preview");
    let index = fs::read_to_string(out.join("index.html")).unwrap();
    let read = |name: &str| fs::read_to_string(out.join(format!("{name}.html"))).unwrap();
    // Within a locale, the path most rows take keeps the locale's name.
    assert_eq!(read("en"), "<p>Dear Ann,</p>");
    assert_eq!(read("en-2"), "<p>Dear customer,</p>");
    assert_eq!(read("ja"), "<p>Dear Ken,</p>");
    let section = |name: &str| {
        index
            .split(&format!("id=\"{name}\""))
            .nth(1)
            .unwrap()
            .split("</section>")
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(
        section("en-2").contains(
            "<dd class=\"rows\">2 rows: lines 3 and 5 of campaigns/audiences/customers.csv</dd>"
        ),
        "{}",
        section("en-2")
    );
    assert!(
        section("en-2").contains("<dd class=\"path\">campaigns/templates/welcome.html.j2:1 {% else %} · campaigns/templates/welcome.txt.j2:1 {% else %}</dd>"),
        "{}",
        section("en-2")
    );
    assert!(
        section("en").contains("2 rows: lines 2 and 4"),
        "{}",
        section("en")
    );

    workspace
        .run(["preview", "--recipient", "BO@example.com", "--out", "one"])
        .code(0)
        .stdout("the message of `bo@example.com` (campaigns/audiences/customers.csv:3) rendered to one; open one/index.html\n");
    assert_eq!(
        fs::read_to_string(workspace.path().join("one/en.html")).unwrap(),
        "<p>Dear customer,</p>"
    );
    workspace
        .run(["preview", "--row", "1", "--out", "one"])
        .code(2)
        .stderr("error: campaign `welcome`: no recipient on line 1 of `campaigns/audiences/customers.csv`: it is the header, beyond the end, or a row that is not sent (a duplicate, suppressed or invalid); nothing was sent\n");
}
