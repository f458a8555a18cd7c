async def test_viewer(api):
    data = await api.data("{ viewer { key name division { key } roles presence } }", user="ann")
    assert data["viewer"] == {
        "key": "ann",
        "name": "Ann Lee",
        "division": {"key": "north"},
        "roles": ["SUPERVISOR"],
        "presence": "OFFLINE",
    }
