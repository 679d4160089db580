from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("settings", views.SettingsView.as_view(), name="settings"),
    path("staff", views.StaffView.as_view(), name="staff"),
    path("audit", views.AuditLogView.as_view(), name="audit"),
    path("switch", views.SwitchRestaurantView.as_view(), name="switch"),
    path("sign-in", views.sign_in, name="sign-in"),
    path("sign-out", views.sign_out, name="sign-out"),
]
