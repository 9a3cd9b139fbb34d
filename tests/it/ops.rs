//! Operations endpoints and request metrics.

both_stores!(
    health_readiness_and_metrics,
    |t: crate::support::TestApp| async move {
        let base = t.serve().await;
        let c = crate::support::client();
        for (path, want) in [("/healthz", "ok"), ("/readyz", "ready")] {
            let r = c.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            assert_eq!(r.text().await.unwrap(), want);
        }
        let id = uuid::Uuid::now_v7();
        let r = c
            .get(format!("{base}/api/v1/people/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let m = c
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(m.contains("anxin_http_requests_total"), "{m}");
        assert!(
            m.contains(r#"route="/api/v1/people/{id}""#),
            "metrics name the route pattern: {m}"
        );
        assert!(m.contains(r#"status="401""#));
        assert!(
            !m.contains(&id.to_string()),
            "metrics never carry identifiers"
        );
    }
);
