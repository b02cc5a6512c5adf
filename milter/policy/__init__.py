"""Policy files: brands, rules, actions, allowlists, banners — loaded, validated, swapped."""
