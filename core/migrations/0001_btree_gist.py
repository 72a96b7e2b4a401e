"""Enable btree_gist: exclusion constraints over (resource id, time range) need it for double-booking guards."""

from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [BtreeGistExtension()]
