from tests.support.milter_fixtures import policy_dir, start_milter

__all__ = ["policy_dir", "start_milter"]
