import apps
from conftest import wait_for

def test_x(store_kind):
    assert apps.app and wait_for and store_kind
