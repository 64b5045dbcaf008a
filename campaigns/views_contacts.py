"""Contact pages (placeholder until the full views land)."""

from django.shortcuts import render

from accounts.decorators import member_required


@member_required("view")
def contact_list(request):
    return render(request, "contacts/contact_list.html", {})
